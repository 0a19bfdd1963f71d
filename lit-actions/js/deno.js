// The Deno transport, appended to prelude.js to make the bootstrap module that every sandboxed
// `deno run` process starts with.
//
// Frames from the host (stdin): u32 big-endian length, then that many bytes of JSON. The first
// frame is the action `{code, params, auth, token}`; the others are replies to host calls.
// Frames to the host (stdout): u32 big-endian length of the JSON, the 16-byte token, the JSON.
// The token is known only to this closure: code that writes to stdout by other means (node:fs on
// fd 1) cannot forge a frame, and the host ends an action whose stream breaks.
(() => {
  "use strict";
  const stdin = Deno.stdin;
  const stdout = Deno.stdout;
  const exit = Deno.exit;
  const native = {
    fetch: globalThis.fetch.bind(globalThis),
    setTimeout: globalThis.setTimeout.bind(globalThis),
    clearTimeout: globalThis.clearTimeout.bind(globalThis),
  };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  // `Deno` and `process` stay: Deno's own node: modules need them, and everything they reach is
  // behind the permissions above. Writing to fd 1 is possible (node:fs), which is why frames to
  // the host carry the token.

  function writeAll(bytes) {
    let off = 0;
    while (off < bytes.length) off += stdout.writeSync(bytes.subarray(off));
  }

  let token = null;
  function send(text) {
    const body = encoder.encode(text);
    const frame = new Uint8Array(4 + 16 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(token, 4);
    frame.set(body, 20);
    writeAll(frame);
  }

  const api = globalThis.__litInstall({ send }, native);

  let buf = new Uint8Array(1 << 16);
  let len = 0;
  function takeFrame() {
    if (len < 4) return null;
    const n = new DataView(buf.buffer, 0, 4).getUint32(0);
    if (len < 4 + n) return null;
    const text = decoder.decode(buf.subarray(4, 4 + n));
    buf.copyWithin(0, 4 + n, len);
    len -= 4 + n;
    return text;
  }
  function hexBytes(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  (async () => {
    const chunk = new Uint8Array(1 << 16);
    for (;;) {
      const n = await stdin.read(chunk);
      if (n === null) exit(0);
      if (len + n > buf.length) {
        let size = buf.length;
        while (size < len + n) size *= 2;
        const bigger = new Uint8Array(size);
        bigger.set(buf.subarray(0, len));
        buf = bigger;
      }
      buf.set(chunk.subarray(0, n), len);
      len += n;
      let text;
      while ((text = takeFrame()) !== null) {
        if (token === null) {
          const job = JSON.parse(text);
          token = hexBytes(job.token);
          api.run(job.code, job.params, job.auth);
        } else {
          api.deliver(text);
        }
      }
    }
  })();
})();
