// The engine-neutral part of the Lit Actions runtime, loaded by every engine before user code.
//
// It defines `globalThis.__litInstall(transport, native)`, which the engine calls once with its
// transport (`send(string)`: one JSON message to the host) and the native capabilities it has
// (`fetch`, `setTimeout`, `clearTimeout` for Deno; none for QuickJS). It returns
// `{ deliver(string), run(code, params, auth) }`: the engine hands every host reply to `deliver`
// and starts the action with `run`, which sends `{op: "done", args: {error}}` at the end.
//
// Messages to the host: `{op, id, args}` for calls (answered by `{id, ok, value | error}`) and
// `{op, args}` for notifications (`log`, `setResponse`, `done`). The host checks every message
// again; the checks here exist to give the action clear JavaScript errors.
(function () {
  "use strict";
  const AsyncFunction = (async function () {}).constructor;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const ObjectKeys = Object.keys;
  const ObjectFreeze = Object.freeze;
  const ArrayIsArray = Array.isArray;
  const ArrayFrom = Array.from;
  const PromiseCtor = Promise;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const Uint8ArrayCtor = Uint8Array;

  globalThis.__litInstall = function install(transport, native) {
    delete globalThis.__litInstall;
    const send = transport.send;
    const pending = new Map();
    let nextId = 1;
    // Operations in flight (host calls, and for Deno native fetches and timers): the action is
    // over when its code has settled and nothing is in flight.
    let inflight = 0;
    let idleWaiters = [];

    function post(message) {
      send(stringify(message));
    }
    function call(op, args) {
      const id = nextId++;
      inflight++;
      return new PromiseCtor((resolve, reject) => {
        pending.set(id, { resolve, reject });
        post({ op, id, args });
      });
    }
    function notify(op, args) {
      post({ op, args });
    }
    function settled() {
      inflight--;
      if (inflight === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) macrotask(w);
      }
    }
    function deliver(text) {
      const m = parse(text);
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      settled();
      if (m.ok) p.resolve(m.value);
      else p.reject(new ErrorCtor(m.error));
    }
    // Runs `fn` once every queued microtask has run.
    function macrotask(fn) {
      if (native.setTimeout) native.setTimeout(fn, 0);
      else {
        inflight++;
        const id = nextId++;
        pending.set(id, { resolve: fn, reject: fn });
        post({ op: "sleep", id, args: { ms: 0 } });
      }
    }
    function idle() {
      return new PromiseCtor((resolve) => {
        const check = () => {
          if (inflight === 0) resolve();
          else idleWaiters.push(check);
        };
        macrotask(check);
      });
    }

    // ---- argument checks -------------------------------------------------------------------
    function kind(v) {
      if (v === null) return "null";
      if (ArrayIsArray(v)) return "an array";
      return typeof v === "object" ? "an object" : `a ${typeof v}`;
    }
    function options(fn, a) {
      if (a === null || typeof a !== "object" || ArrayIsArray(a)) {
        throw new TypeErrorCtor(`Lit.Actions.${fn} takes one object argument, got ${kind(a)}`);
      }
      return a;
    }
    function str(fn, a, key) {
      const v = a[key];
      if (typeof v !== "string") {
        throw new TypeErrorCtor(`Lit.Actions.${fn}: ${key} must be a string, got ${kind(v)}`);
      }
      return v;
    }
    function present(fn, a, key) {
      const v = a[key];
      if (v === undefined) throw new TypeErrorCtor(`Lit.Actions.${fn}: ${key} is required`);
      return v;
    }
    function optional(a, key) {
      const v = a[key];
      return v === undefined ? null : v;
    }
    function bytes(fn, a, key) {
      const v = a[key];
      const ok =
        v instanceof Uint8ArrayCtor ||
        (ArrayIsArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255));
      if (!ok) {
        throw new TypeErrorCtor(
          `Lit.Actions.${fn}: ${key} must be a Uint8Array or an array of bytes, got ${kind(v)}`,
        );
      }
      return ArrayFrom(v);
    }
    // Host calls are async: a bad argument rejects the returned promise.
    function asyncFn(name, f) {
      return {
        [name](...args) {
          try {
            return f(...args);
          } catch (e) {
            return PromiseCtor.reject(e);
          }
        },
      }[name];
    }

    // ---- Lit.Actions ---------------------------------------------------------------------------
    const actions = {
      setResponse(a) {
        options("setResponse", a);
        const response = a.response;
        if (typeof response !== "string") {
          throw new TypeErrorCtor(
            `Lit.Actions.setResponse: response must be a string, got ${kind(response)}`,
          );
        }
        notify("setResponse", { response });
      },
      signEcdsa: asyncFn("signEcdsa", (a) => {
        options("signEcdsa", a);
        return call("signEcdsa", {
          toSign: bytes("signEcdsa", a, "toSign"),
          publicKey: str("signEcdsa", a, "publicKey"),
          sigName: str("signEcdsa", a, "sigName"),
        });
      }),
      signAndCombineEcdsa: asyncFn("signAndCombineEcdsa", (a) => {
        options("signAndCombineEcdsa", a);
        return call("signAndCombineEcdsa", {
          toSign: bytes("signAndCombineEcdsa", a, "toSign"),
          publicKey: str("signAndCombineEcdsa", a, "publicKey"),
          sigName: str("signAndCombineEcdsa", a, "sigName"),
        });
      }),
      checkConditions: asyncFn("checkConditions", (a) => {
        options("checkConditions", a);
        return call("checkConditions", {
          conditions: present("checkConditions", a, "conditions"),
          authSig: optional(a, "authSig"),
          chain: str("checkConditions", a, "chain"),
        });
      }),
      decryptAndCombine: asyncFn("decryptAndCombine", (a) => {
        options("decryptAndCombine", a);
        return call("decryptAndCombine", {
          accessControlConditions: present("decryptAndCombine", a, "accessControlConditions"),
          ciphertext: str("decryptAndCombine", a, "ciphertext"),
          dataToEncryptHash: str("decryptAndCombine", a, "dataToEncryptHash"),
          authSig: optional(a, "authSig"),
          chain: str("decryptAndCombine", a, "chain"),
        });
      }),
      encrypt: asyncFn("encrypt", (a) => {
        options("encrypt", a);
        return call("encrypt", {
          accessControlConditions: present("encrypt", a, "accessControlConditions"),
          to_encrypt: bytes("encrypt", a, "to_encrypt"),
        });
      }),
      getRpcUrl: asyncFn("getRpcUrl", (a) => {
        options("getRpcUrl", a);
        return call("getRpcUrl", { chain: str("getRpcUrl", a, "chain") });
      }),
      runOnce: asyncFn("runOnce", async (a, fn) => {
        options("runOnce", a);
        const name = str("runOnce", a, "name");
        const waitForResponse = a.waitForResponse === undefined ? false : a.waitForResponse;
        if (typeof waitForResponse !== "boolean") {
          throw new TypeErrorCtor(
            `Lit.Actions.runOnce: waitForResponse must be a boolean, got ${kind(waitForResponse)}`,
          );
        }
        if (typeof fn !== "function") {
          throw new TypeErrorCtor(`Lit.Actions.runOnce: the second argument must be a function`);
        }
        const role = await call("runOnce", { name, waitForResponse });
        if (role.role !== "run") return role.result;
        const value = await fn();
        const result =
          value === undefined ? "" : typeof value === "string" ? value : stringify(value);
        await call("runOnceResult", { name, result });
        return result;
      }),
      // PKP permissions, read from the network's record of the PKP (as Lit reads its
      // PKPPermissions contract): an unknown PKP has no permissions.
      isPermittedAction: asyncFn("isPermittedAction", async (a) => {
        options("isPermittedAction", a);
        const ipfsId = str("isPermittedAction", a, "ipfsId");
        const p = await permissionsOf("isPermittedAction", a);
        return p.actions.includes(ipfsId);
      }),
      isPermittedAddress: asyncFn("isPermittedAddress", async (a) => {
        options("isPermittedAddress", a);
        const address = str("isPermittedAddress", a, "address").toLowerCase();
        const p = await permissionsOf("isPermittedAddress", a);
        return p.addresses.some((x) => x.toLowerCase() === address);
      }),
      isPermittedAuthMethod: asyncFn("isPermittedAuthMethod", async (a) => {
        options("isPermittedAuthMethod", a);
        return (await authMethodOf("isPermittedAuthMethod", a)) !== undefined;
      }),
      getPermittedActions: asyncFn("getPermittedActions", async (a) => {
        options("getPermittedActions", a);
        return ArrayFrom((await permissionsOf("getPermittedActions", a)).actions);
      }),
      getPermittedAddresses: asyncFn("getPermittedAddresses", async (a) => {
        options("getPermittedAddresses", a);
        return ArrayFrom((await permissionsOf("getPermittedAddresses", a)).addresses);
      }),
      getPermittedAuthMethods: asyncFn("getPermittedAuthMethods", async (a) => {
        options("getPermittedAuthMethods", a);
        const p = await permissionsOf("getPermittedAuthMethods", a);
        return p.authMethods.map((m) => ({
          auth_method_type: m.methodType,
          id: "0x" + m.id.toLowerCase(),
          user_pubkey: "0x",
        }));
      }),
      getPermittedAuthMethodScopes: asyncFn("getPermittedAuthMethodScopes", async (a) => {
        options("getPermittedAuthMethodScopes", a);
        const max = a.maxScopeId;
        if (!Number.isInteger(max) || max < 0 || max > 256) {
          throw new TypeErrorCtor(
            `Lit.Actions.getPermittedAuthMethodScopes: maxScopeId must be an integer from 0 to 256, got ${kind(max)}`,
          );
        }
        const m = await authMethodOf("getPermittedAuthMethodScopes", a);
        // Lit's scope ids: 1 sign anything, 2 personal sign; the answer has maxScopeId entries
        const on = new Set((m ? m.scopes : []).map((s) => SCOPE_IDS[s]));
        return ArrayFrom({ length: max }, (_, i) => on.has(i));
      }),
      pubkeyToTokenId: asyncFn("pubkeyToTokenId", async (a) => {
        options("pubkeyToTokenId", a);
        return call("pubkeyToTokenId", { publicKey: str("pubkeyToTokenId", a, "publicKey") });
      }),
      // Lit's re-exports of the `uint8arrays` package: encodings by their multibase names
      // (https://github.com/multiformats/multibase/blob/master/multibase.csv).
      uint8arrayToString(array, encoding = "utf8") {
        if (!(array instanceof Uint8ArrayCtor)) {
          throw new TypeErrorCtor(
            `Lit.Actions.uint8arrayToString: the first argument must be a Uint8Array, got ${kind(array)}`,
          );
        }
        return codec("uint8arrayToString", encoding).encode(array);
      },
      uint8arrayFromString(string, encoding = "utf8") {
        if (typeof string !== "string") {
          throw new TypeErrorCtor(
            `Lit.Actions.uint8arrayFromString: the first argument must be a string, got ${kind(string)}`,
          );
        }
        return codec("uint8arrayFromString", encoding).decode(string);
      },
      broadcastAndCollect: asyncFn("broadcastAndCollect", (a) => {
        options("broadcastAndCollect", a);
        return call("broadcastAndCollect", {
          name: str("broadcastAndCollect", a, "name"),
          value: str("broadcastAndCollect", a, "value"),
        });
      }),
    };
    ObjectFreeze(actions);
    const known = ObjectKeys(actions).join(", ");
    const LitActions = new Proxy(actions, {
      get(target, prop) {
        if (typeof prop === "string" && !(prop in target)) {
          throw new TypeErrorCtor(
            `Lit.Actions.${prop} is not a Lit Actions function (there are: ${known})`,
          );
        }
        return target[prop];
      },
      set(_t, prop) {
        throw new TypeErrorCtor(`Lit.Actions.${String(prop)} cannot be assigned`);
      },
    });

    // ---- console -------------------------------------------------------------------------------
    function show(v) {
      if (typeof v === "string") return v;
      if (v instanceof ErrorCtor) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v}`;
      if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") return String(v);
      if (v === undefined) return "undefined";
      try {
        const s = stringify(v);
        return s === undefined ? String(v) : s;
      } catch (_e) {
        return String(v);
      }
    }
    function logger(...args) {
      notify("log", { text: args.map(show).join(" ") });
    }
    // Not frozen: Deno's node: compatibility layer attaches its streams to `console`.
    const console = ({
      log: logger,
      info: logger,
      warn: logger,
      error: logger,
      debug: logger,
      trace: logger,
    });

    // ---- fetch and timers ----------------------------------------------------------------------
    function urlOf(input) {
      if (typeof input === "string") return input;
      if (input && typeof input.href === "string") return input.href;
      if (input && typeof input.url === "string") return input.url;
      throw new TypeErrorCtor(`fetch: the first argument must be a URL, got ${kind(input)}`);
    }
    let fetch;
    if (native.fetch) {
      const nativeFetch = native.fetch;
      fetch = async function fetch(input, init) {
        // The host counts the fetch and checks the allow-list (Deno's --allow-net checks it too).
        await call("fetch", { url: urlOf(input) });
        inflight++;
        try {
          return await nativeFetch(input, init);
        } finally {
          settled();
        }
      };
    } else {
      fetch = async function fetch(input, init) {
        const url = urlOf(input);
        init = init || {};
        let headers = [];
        const h = init.headers;
        if (h && typeof h === "object") {
          const entries = typeof h.entries === "function" ? ArrayFrom(h.entries()) : Object.entries(h);
          headers = entries.map(([k, v]) => [String(k), String(v)]);
        }
        const body = init.body === undefined || init.body === null ? null : String(init.body);
        const r = await call("fetch", { url, method: init.method || "GET", headers, body });
        const lower = new Map(r.headers.map(([k, v]) => [k.toLowerCase(), v]));
        let used = false;
        const take = () => {
          if (used) throw new TypeErrorCtor("fetch: the body has already been read");
          used = true;
          return r.body;
        };
        return ObjectFreeze({
          status: r.status,
          statusText: r.statusText,
          ok: r.status >= 200 && r.status < 300,
          url: r.url,
          headers: ObjectFreeze({
            get: (k) => (lower.has(String(k).toLowerCase()) ? lower.get(String(k).toLowerCase()) : null),
            has: (k) => lower.has(String(k).toLowerCase()),
            entries: () => lower.entries(),
          }),
          text: async () => take(),
          json: async () => parse(take()),
        });
      };
    }

    // An exception escaping a timer callback ends the action, as an uncaught one would.
    function guarded(fn, args) {
      if (typeof fn !== "function") return;
      try {
        fn(...args);
      } catch (e) {
        finish(describe(e));
      }
    }
    let finished = false;
    function finish(error) {
      if (finished) return;
      finished = true;
      notify("done", { error });
    }

    let setTimeout, clearTimeout, setInterval, clearInterval;
    if (native.setTimeout) {
      const nativeSet = native.setTimeout;
      const nativeClear = native.clearTimeout;
      const live = new Map();
      setTimeout = function setTimeout(fn, ms, ...args) {
        inflight++;
        const handle = nativeSet(() => {
          live.delete(handle);
          settled();
          guarded(fn, args);
        }, ms);
        live.set(handle, true);
        return handle;
      };
      clearTimeout = function clearTimeout(handle) {
        if (live.delete(handle)) {
          nativeClear(handle);
          settled();
        }
      };
    } else {
      const cancelled = new Set();
      let nextTimer = 1;
      setTimeout = function setTimeout(fn, ms, ...args) {
        const handle = nextTimer++;
        const delay = Number(ms) > 0 ? Math.floor(Number(ms)) : 0;
        call("sleep", { ms: delay }).then(() => {
          if (cancelled.delete(handle)) return;
          guarded(fn, args);
        });
        return handle;
      };
      clearTimeout = function clearTimeout(handle) {
        cancelled.add(handle);
      };
    }
    {
      const intervals = new Map();
      setInterval = function setInterval(fn, ms, ...args) {
        const handle = {};
        const tick = () => {
          intervals.set(handle, setTimeout(tick, ms));
          if (typeof fn === "function") fn(...args);
        };
        intervals.set(handle, setTimeout(tick, ms));
        return handle;
      };
      clearInterval = function clearInterval(handle) {
        if (intervals.has(handle)) {
          clearTimeout(intervals.get(handle));
          intervals.delete(handle);
        }
      };
    }

    // UTF-8 TextEncoder/TextDecoder where the engine has none (QuickJS).
    let TextEncoderImpl = globalThis.TextEncoder;
    let TextDecoderImpl = globalThis.TextDecoder;
    if (TextEncoderImpl === undefined) {
      TextEncoderImpl = class TextEncoder {
        get encoding() {
          return "utf-8";
        }
        encode(input = "") {
          const s = String(input);
          const out = [];
          for (let i = 0; i < s.length; i++) {
            let c = s.charCodeAt(i);
            if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
              const d = s.charCodeAt(i + 1);
              if (d >= 0xdc00 && d <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
              } else c = 0xfffd;
            } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
            if (c < 0x80) out.push(c);
            else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
            else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
            else
              out.push(
                0xf0 | (c >> 18),
                0x80 | ((c >> 12) & 63),
                0x80 | ((c >> 6) & 63),
                0x80 | (c & 63),
              );
          }
          return new Uint8ArrayCtor(out);
        }
      };
    }
    if (TextDecoderImpl === undefined) {
      TextDecoderImpl = class TextDecoder {
        get encoding() {
          return "utf-8";
        }
        decode(input) {
          if (input === undefined) return "";
          const b = input instanceof Uint8ArrayCtor ? input : new Uint8ArrayCtor(input.buffer || input);
          let s = "";
          for (let i = 0; i < b.length; ) {
            const x = b[i];
            let c = 0xfffd;
            let n = 1;
            const cont = (k) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
            if (x < 0x80) c = x;
            else if (x >= 0xc2 && x < 0xe0 && cont(1)) {
              c = ((x & 31) << 6) | (b[i + 1] & 63);
              n = 2;
            } else if (x >= 0xe0 && x < 0xf0 && cont(1) && cont(2)) {
              c = ((x & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63);
              n = 3;
              if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
            } else if (x >= 0xf0 && x < 0xf5 && cont(1) && cont(2) && cont(3)) {
              c =
                ((x & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63);
              n = 4;
              if (c < 0x10000 || c > 0x10ffff) c = 0xfffd;
            }
            s += String.fromCodePoint(c);
            i += n;
          }
          return s;
        }
      };
    }

    // ---- PKP permissions ---------------------------------------------------------------------
    const SCOPE_IDS = { "sign-anything": 1, "personal-sign": 2 };
    // Lit passes token ids as decimal strings, `0x` hex strings, BigInts or numbers
    function tokenIdOf(fn, a) {
      const t = a.tokenId;
      let n;
      try {
        if (typeof t === "bigint") n = t;
        else if (typeof t === "string" && t !== "") n = BigInt(t);
        else if (typeof t === "number" && Number.isSafeInteger(t)) n = BigInt(t);
      } catch (_e) {
        n = undefined;
      }
      if (n === undefined || n < 0n || n >= 1n << 256n) {
        throw new TypeErrorCtor(
          `Lit.Actions.${fn}: tokenId must be a uint256 (a decimal or 0x-hex string), got ${kind(t)}`,
        );
      }
      return n.toString(16).padStart(64, "0");
    }
    async function permissionsOf(fn, a) {
      const info = await call("pkpInfo", { tokenId: tokenIdOf(fn, a) });
      return info ? info.permissions : { addresses: [], authMethods: [], actions: [] };
    }
    // the user id as Lit gives it: bytes (a Uint8Array), or a hex string
    function userIdOf(fn, a) {
      const u = a.userId;
      if (u instanceof Uint8ArrayCtor) return hexEncode(u, false);
      if (typeof u === "string" && /^(0x)?([0-9a-fA-F]{2})*$/.test(u)) return u.replace(/^0x/, "").toLowerCase();
      throw new TypeErrorCtor(`Lit.Actions.${fn}: userId must be a Uint8Array or a hex string, got ${kind(u)}`);
    }
    async function authMethodOf(fn, a) {
      const type = Number(a.authMethodType);
      if (!Number.isInteger(type) || type < 0) {
        throw new TypeErrorCtor(`Lit.Actions.${fn}: authMethodType must be an integer, got ${kind(a.authMethodType)}`);
      }
      const id = userIdOf(fn, a);
      const p = await permissionsOf(fn, a);
      return p.authMethods.find((m) => m.methodType === type && m.id.toLowerCase() === id);
    }

    // ---- bytes and strings: atob/btoa where the engine has none, and the multibase codecs ----
    function invalidCharacter(fn, what) {
      const e = new ErrorCtor(`${fn}: ${what}`);
      e.name = "InvalidCharacterError";
      return e;
    }
    const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    function base64Encode(bytes, alphabet, pad) {
      let out = "";
      let i = 0;
      for (; i + 2 < bytes.length; i += 3) {
        const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
        out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
      }
      const rest = bytes.length - i;
      if (rest === 1) {
        const n = bytes[i] << 16;
        out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + (pad ? "==" : "");
      } else if (rest === 2) {
        const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
        out += alphabet[n >> 18] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? "=" : "");
      }
      return out;
    }
    // Trailing padding is optional; a length that leaves one character over is refused.
    function base64Decode(fn, text, alphabet) {
      let end = text.length;
      while (end > 0 && text[end - 1] === "=") end--;
      if (text.length - end > 2 || end % 4 === 1) {
        throw invalidCharacter(fn, "the string is not correctly encoded");
      }
      const out = new Uint8ArrayCtor(Math.floor((end * 3) / 4));
      let acc = 0;
      let bits = 0;
      let o = 0;
      for (let i = 0; i < end; i++) {
        const v = alphabet.indexOf(text[i]);
        if (v < 0) throw invalidCharacter(fn, `the string contains ${stringify(text[i])}`);
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out[o++] = (acc >> bits) & 0xff;
        }
      }
      return out;
    }
    function latin1(fn, text) {
      const out = new Uint8ArrayCtor(text.length);
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c > 0xff) throw invalidCharacter(fn, "the string contains a character above U+00FF");
        out[i] = c;
      }
      return out;
    }
    function fromLatin1(bytes) {
      let s = "";
      for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
      return s;
    }
    function base58Encode(bytes) {
      let zeros = 0;
      while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
      const digits = [];
      for (let i = zeros; i < bytes.length; i++) {
        let carry = bytes[i];
        for (let j = 0; j < digits.length; j++) {
          carry += digits[j] << 8;
          digits[j] = carry % 58;
          carry = Math.floor(carry / 58);
        }
        while (carry > 0) {
          digits.push(carry % 58);
          carry = Math.floor(carry / 58);
        }
      }
      let out = "1".repeat(zeros);
      for (let i = digits.length - 1; i >= 0; i--) out += B58[digits[i]];
      return out;
    }
    function base58Decode(fn, text) {
      let zeros = 0;
      while (zeros < text.length && text[zeros] === "1") zeros++;
      const bytes = [];
      for (let i = zeros; i < text.length; i++) {
        let carry = B58.indexOf(text[i]);
        if (carry < 0) throw invalidCharacter(fn, `the string contains ${stringify(text[i])}`);
        for (let j = 0; j < bytes.length; j++) {
          carry += bytes[j] * 58;
          bytes[j] = carry & 0xff;
          carry >>= 8;
        }
        while (carry > 0) {
          bytes.push(carry & 0xff);
          carry >>= 8;
        }
      }
      const out = new Uint8ArrayCtor(zeros + bytes.length);
      for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i];
      return out;
    }
    function hexDecode(fn, text) {
      if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
        throw invalidCharacter(fn, "the string is not an even number of hex digits");
      }
      const out = new Uint8ArrayCtor(text.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
      return out;
    }
    function hexEncode(bytes, upper) {
      let s = "";
      for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
      return upper ? s.toUpperCase() : s;
    }
    const codecs = {
      utf8: [(b) => new TextDecoderImpl().decode(b), (_fn, t) => new TextEncoderImpl().encode(t)],
      ascii: [fromLatin1, latin1],
      latin1: [fromLatin1, latin1],
      base16: [(b) => hexEncode(b, false), hexDecode],
      base16upper: [(b) => hexEncode(b, true), hexDecode],
      base64: [(b) => base64Encode(b, B64, false), (fn, t) => base64Decode(fn, t, B64)],
      base64pad: [(b) => base64Encode(b, B64, true), (fn, t) => base64Decode(fn, t, B64)],
      base64url: [(b) => base64Encode(b, B64URL, false), (fn, t) => base64Decode(fn, t, B64URL)],
      base64urlpad: [(b) => base64Encode(b, B64URL, true), (fn, t) => base64Decode(fn, t, B64URL)],
      base58btc: [base58Encode, base58Decode],
    };
    codecs["utf-8"] = codecs.utf8;
    codecs.binary = codecs.latin1;
    function codec(fn, encoding) {
      const c = typeof encoding === "string" ? codecs[encoding] : undefined;
      if (!c) {
        throw new TypeErrorCtor(
          `Lit.Actions.${fn}: unsupported encoding ${stringify(String(encoding))} (supported: ${ObjectKeys(codecs).join(", ")})`,
        );
      }
      const name = `Lit.Actions.${fn}`;
      return { encode: (bytes) => c[0](bytes), decode: (text) => c[1](name, text) };
    }
    let atobImpl = globalThis.atob;
    let btoaImpl = globalThis.btoa;
    if (atobImpl === undefined) {
      // forgiving-base64 decode (WHATWG Infra): ASCII whitespace ignored, padding optional
      atobImpl = function atob(data) {
        const text = String(data).replace(/[\t\n\f\r ]/g, "");
        if (/[^A-Za-z0-9+/=]/.test(text) || /=[^=]/.test(text)) {
          throw invalidCharacter("atob", "the string to be decoded is not correctly encoded");
        }
        if (text.length % 4 === 0 || !text.includes("=")) {
          return fromLatin1(base64Decode("atob", text, B64));
        }
        throw invalidCharacter("atob", "the string to be decoded is not correctly encoded");
      };
    }
    if (btoaImpl === undefined) {
      btoaImpl = function btoa(data) {
        return base64Encode(latin1("btoa", String(data)), B64, true);
      };
    }

    // Web Crypto's `getRandomValues` and `subtle.digest` where the engine has no `crypto`
    // (QuickJS, from its native `randomBytes` and `digest`).
    let cryptoImpl = globalThis.crypto;
    if (cryptoImpl === undefined && native.randomBytes && native.digest) {
      const randomBytes = native.randomBytes;
      const nativeDigest = native.digest;
      const integerArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
        Int32Array, Uint32Array];
      const named = (name, message) => {
        const e = new ErrorCtor(message);
        e.name = name;
        return e;
      };
      const bytesOf = (data) => {
        if (data instanceof ArrayBuffer) return new Uint8ArrayCtor(data);
        if (ArrayBuffer.isView(data)) return new Uint8ArrayCtor(data.buffer, data.byteOffset, data.byteLength);
        throw new TypeErrorCtor(`crypto.subtle.digest: data must be a BufferSource, got ${kind(data)}`);
      };
      cryptoImpl = ObjectFreeze({
        getRandomValues(array) {
          if (!integerArrays.some((T) => array instanceof T)) {
            throw named("TypeMismatchError", "crypto.getRandomValues: the argument must be an integer typed array");
          }
          if (array.byteLength > 65536) {
            throw named("QuotaExceededError", `crypto.getRandomValues: ${array.byteLength} bytes asked, at most 65536`);
          }
          const random = randomBytes(array.byteLength);
          new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength).set(random);
          return array;
        },
        randomUUID() {
          const b = new Uint8ArrayCtor(randomBytes(16));
          b[6] = (b[6] & 0x0f) | 0x40;
          b[8] = (b[8] & 0x3f) | 0x80;
          const h = hexEncode(b, false);
          return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        },
        subtle: ObjectFreeze({
          digest: asyncFn("digest", (algorithm, data) => {
            const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
            const upper = typeof name === "string" ? name.toUpperCase() : "";
            const bytes = bytesOf(data);
            const out = nativeDigest(upper, ArrayFrom(bytes));
            if (out === undefined || out === null) {
              throw named("NotSupportedError", `crypto.subtle.digest: unsupported algorithm ${stringify(String(name))} (SHA-256, SHA-384 and SHA-512 are)`);
            }
            return PromiseCtor.resolve(new Uint8ArrayCtor(out).buffer);
          }),
        }),
      });
    }

    function describe(e) {
      try {
        if (e !== null && typeof e === "object" && typeof e.message === "string") {
          return {
            name: typeof e.name === "string" ? e.name : "Error",
            message: e.message,
            stack: typeof e.stack === "string" ? e.stack : "",
          };
        }
        return { name: "", message: `Uncaught ${show(e)}`, stack: "" };
      } catch (_e) {
        return { name: "", message: "Uncaught exception", stack: "" };
      }
    }

    async function run(code, params, auth) {
      let error = null;
      try {
        const Lit = ObjectFreeze({ Actions: LitActions, Auth: deepFreeze(auth) });
        const globals = {
          Lit,
          LitActions,
          LitAuth: Lit.Auth,
          console,
          fetch,
          setTimeout,
          clearTimeout,
          setInterval,
          clearInterval,
          jsParams: params,
          TextEncoder: TextEncoderImpl,
          TextDecoder: TextDecoderImpl,
          atob: atobImpl,
          btoa: btoaImpl,
        };
        if (cryptoImpl !== undefined && globalThis.crypto === undefined) globals.crypto = cryptoImpl;
        for (const k of ObjectKeys(globals)) {
          Object.defineProperty(globalThis, k, {
            value: globals[k],
            writable: k !== "Lit" && k !== "LitActions",
            configurable: false,
            enumerable: false,
          });
        }
        for (const k of ObjectKeys(params)) {
          if (!(k in globals)) globalThis[k] = params[k];
        }
        const main = new AsyncFunction(code);
        await main();
        await idle();
      } catch (e) {
        error = describe(e);
      }
      finish(error);
    }

    function deepFreeze(o) {
      if (o && typeof o === "object") {
        for (const k of ObjectKeys(o)) deepFreeze(o[k]);
        ObjectFreeze(o);
      }
      return o;
    }

    return { deliver, run };
  };
})();
