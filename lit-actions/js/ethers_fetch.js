// The `fetch` the ethers bundle sees (declared in the function the bundle is evaluated in, so
// nothing else sees it): ethers v5's browser build asks for `referrer: "client"`, which browsers
// read as the default and Deno refuses as an invalid URL, so it is dropped; where the engine's
// `fetch` is text-only (QuickJS, `textOnly`), the request body ethers sends as UTF-8 bytes is
// sent as its text, and the response gets the `arrayBuffer()` and `headers.forEach` ethers reads.
(function ethersFetch(textOnly) {
  "use strict";
  return function fetch(input, init) {
    const request = Object.assign({}, init);
    if (request.referrer === "client") delete request.referrer;
    if (!textOnly) return globalThis.fetch(input, request);
    if (request.body instanceof Uint8Array) request.body = new TextDecoder().decode(request.body);
    return globalThis.fetch(input, request).then((r) => {
      const headers = r.headers;
      return Object.freeze({
        status: r.status,
        statusText: r.statusText,
        ok: r.ok,
        url: r.url,
        headers: Object.freeze({
          get: headers.get,
          has: headers.has,
          entries: headers.entries,
          forEach(fn) {
            for (const [k, v] of headers.entries()) fn(v, k);
          },
        }),
        text: r.text,
        json: r.json,
        arrayBuffer: async () => new TextEncoder().encode(await r.text()).buffer,
      });
    });
  };
})
