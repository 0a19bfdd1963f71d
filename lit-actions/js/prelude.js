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
      if (v === undefined) return "undefined";
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
    // The condition list under whichever of Lit's request keys the action used (exactly one);
    // the list is read by its items' shapes, and the encryption identity hashes it as given.
    const CONDITION_KEYS = [
      "accessControlConditions",
      "evmContractConditions",
      "unifiedAccessControlConditions",
    ];
    function conditionList(fn, a) {
      const given = CONDITION_KEYS.filter((k) => a[k] !== undefined);
      if (given.length !== 1) {
        throw new TypeErrorCtor(
          `Lit.Actions.${fn}: give exactly one of ${CONDITION_KEYS.join(", ")}; got ${given.length === 0 ? "none" : given.join(", ")}`,
        );
      }
      return a[given[0]];
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
          accessControlConditions: conditionList("decryptAndCombine", a),
          ciphertext: str("decryptAndCombine", a, "ciphertext"),
          dataToEncryptHash: str("decryptAndCombine", a, "dataToEncryptHash"),
          authSig: optional(a, "authSig"),
          chain: str("decryptAndCombine", a, "chain"),
        });
      }),
      encrypt: asyncFn("encrypt", (a) => {
        options("encrypt", a);
        return call("encrypt", {
          accessControlConditions: conditionList("encrypt", a),
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
      // EIP-191: the PKP signs keccak256("\x19Ethereum Signed Message:\n" + len + message) of
      // the message's UTF-8 bytes; the share goes to the client as signEcdsa's does.
      ethPersonalSignMessageEcdsa: asyncFn("ethPersonalSignMessageEcdsa", (a) => {
        const fn = "ethPersonalSignMessageEcdsa";
        options(fn, a);
        return call(fn, {
          message: ArrayFrom(new TextEncoderImpl().encode(str(fn, a, "message"))),
          publicKey: str(fn, a, "publicKey"),
          sigName: str(fn, a, "sigName"),
        });
      }),
      // The action's own key (derived from its IPFS id): Lit's SignedDataOutput as JSON text.
      signAsAction: asyncFn("signAsAction", (a) => {
        const fn = "signAsAction";
        options(fn, a);
        return call(fn, {
          toSign: bytes(fn, a, "toSign"),
          sigName: str(fn, a, "sigName"),
          signingScheme: str(fn, a, "signingScheme"),
        });
      }),
      getActionPublicKey: asyncFn("getActionPublicKey", (a) => {
        const fn = "getActionPublicKey";
        options(fn, a);
        return call(fn, {
          signingScheme: str(fn, a, "signingScheme"),
          actionIpfsCid: str(fn, a, "actionIpfsCid"),
        });
      }),
      verifyActionSignature: asyncFn("verifyActionSignature", (a) => {
        const fn = "verifyActionSignature";
        options(fn, a);
        return call(fn, {
          signingScheme: str(fn, a, "signingScheme"),
          actionIpfsCid: str(fn, a, "actionIpfsCid"),
          toSign: bytes(fn, a, "toSign"),
          signOutput: str(fn, a, "signOutput"),
        });
      }),
      getLatestNonce: asyncFn("getLatestNonce", (a) => {
        const fn = "getLatestNonce";
        options(fn, a);
        return call(fn, { address: str(fn, a, "address"), chain: str(fn, a, "chain") });
      }),
      // AES-256-CBC, the IV in the ciphertext's first 16 bytes; the plaintext as hex (Lit's).
      aesDecrypt: asyncFn("aesDecrypt", (a) => {
        const fn = "aesDecrypt";
        options(fn, a);
        return call(fn, {
          symmetricKey: bytes(fn, a, "symmetricKey"),
          ciphertext: bytes(fn, a, "ciphertext"),
        });
      }),
      // Runs another (uploaded) action by its IPFS id; its response, "" when it set none.
      call: asyncFn("call", (a) => {
        const fn = "call";
        options(fn, a);
        const ipfsId = str(fn, a, "ipfsId");
        const params = optional(a, "params");
        if (params !== null && (typeof params !== "object" || ArrayIsArray(params))) {
          throw new TypeErrorCtor(`Lit.Actions.call: params must be an object, got ${kind(params)}`);
        }
        return call(fn, { ipfsId, params: params === null ? {} : params });
      }),
      decryptToSingleNode: asyncFn("decryptToSingleNode", (a) => {
        const fn = "decryptToSingleNode";
        options(fn, a);
        return call(fn, {
          accessControlConditions: conditionList(fn, a),
          ciphertext: str(fn, a, "ciphertext"),
          dataToEncryptHash: str(fn, a, "dataToEncryptHash"),
          authSig: optional(a, "authSig"),
          chain: str(fn, a, "chain"),
        });
      }),
      claimKey: asyncFn("claimKey", (a) => {
        options("claimKey", a);
        return call("claimKey", { keyId: str("claimKey", a, "keyId") });
      }),
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
      // A timer is a host `sleep` call; clearing it forgets the call, so a cleared timer no
      // longer keeps the action alive (the host's answer, if it comes, is ignored).
      const timers = new Map(); // handle -> call id
      let nextTimer = 1;
      setTimeout = function setTimeout(fn, ms, ...args) {
        const handle = nextTimer++;
        const delay = Number(ms) > 0 ? Math.floor(Number(ms)) : 0;
        const id = nextId++;
        inflight++;
        timers.set(handle, id);
        const fire = () => {
          timers.delete(handle);
          PromiseCtor.resolve().then(() => guarded(fn, args));
        };
        pending.set(id, { resolve: fire, reject: fire });
        post({ op: "sleep", id, args: { ms: delay } });
        return handle;
      };
      clearTimeout = function clearTimeout(handle) {
        const id = timers.get(handle);
        if (id === undefined) return;
        timers.delete(handle);
        if (pending.delete(id)) settled();
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

    // ---- URL and URLSearchParams where the engine has none (QuickJS) ---------------------------
    // Written from the WHATWG URL Standard (https://url.spec.whatwg.org/): the basic URL parser's
    // state machine (with the state overrides the setters use), the host parser (domains, IPv4
    // with its hex/octal forms, IPv6 with its canonical serialization, opaque hosts), the URL
    // serializer, origins, and the application/x-www-form-urlencoded parser and serializer.
    // Deno keeps its native classes; on QuickJS these give the same answers.
    //
    // Supported: special schemes (http, https, ws, wss, ftp, file, with default ports elided),
    // other schemes with an authority (`foo://host/path`) or an opaque path (`data:`, `mailto:`),
    // relative references against a base, userinfo, percent-encoding with the standard's encode
    // sets, every `URL` getter and setter, `searchParams` linked both ways, `URL.canParse`,
    // `URL.parse`, and `URLSearchParams` in full. Not supported: non-ASCII host names, which need
    // IDNA (UTS #46) and Punycode: such a host (also one percent-encoded) throws
    // `TypeError: IDNA is not supported` instead of being converted to `xn--` labels; ASCII labels
    // are lowercased but `xn--` labels are not checked for valid Punycode. Query encodings other
    // than UTF-8 (the standard's legacy form encodings) and `URL.createObjectURL` are not provided.
    // Paths leave `^` as it is, as Deno's native URL does (see `pathSet`).
    let URLImpl = globalThis.URL;
    let URLSearchParamsImpl = globalThis.URLSearchParams;
    if (URLImpl === undefined || URLSearchParamsImpl === undefined) {
      const FAILURE = Symbol("failure");
      // the special schemes and their default ports
      const SPECIAL = new Map([["ftp", 21], ["file", null], ["http", 80], ["https", 443], ["ws", 80], ["wss", 443]]);
      const isSpecialScheme = (s) => SPECIAL.has(s);
      const defaultPort = (s) => (SPECIAL.has(s) ? SPECIAL.get(s) : null);

      // -- code points, UTF-8 and percent-encoding --
      // Strings as the standard's USVStrings: lone surrogates become U+FFFD.
      const usv = (v) => {
        const s = String(v);
        let out = "";
        for (let i = 0; i < s.length; i++) {
          const c = s.charCodeAt(i);
          if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
            const d = s.charCodeAt(i + 1);
            if (d >= 0xdc00 && d <= 0xdfff) {
              out += s[i] + s[i + 1];
              i++;
              continue;
            }
          }
          out += c >= 0xd800 && c <= 0xdfff ? "\ufffd" : s[i];
        }
        return out;
      };
      const utf8Encode = (s) => {
        const out = [];
        for (const ch of s) {
          const c = ch.codePointAt(0);
          if (c < 0x80) out.push(c);
          else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
          else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
          else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        }
        return out;
      };
      // The Encoding Standard's UTF-8 decoder (one U+FFFD per maximal invalid subpart), no BOM.
      const utf8Decode = (bytes) => {
        let s = "";
        let cp = 0;
        let needed = 0;
        let seen = 0;
        let lower = 0x80;
        let upper = 0xbf;
        for (let i = 0; i < bytes.length; i++) {
          const b = bytes[i];
          if (needed === 0) {
            if (b < 0x80) s += String.fromCharCode(b);
            else if (b >= 0xc2 && b <= 0xdf) {
              needed = 1;
              cp = b & 0x1f;
            } else if (b >= 0xe0 && b <= 0xef) {
              if (b === 0xe0) lower = 0xa0;
              if (b === 0xed) upper = 0x9f;
              needed = 2;
              cp = b & 0xf;
            } else if (b >= 0xf0 && b <= 0xf4) {
              if (b === 0xf0) lower = 0x90;
              if (b === 0xf4) upper = 0x8f;
              needed = 3;
              cp = b & 0x7;
            } else s += "\ufffd";
            continue;
          }
          if (b < lower || b > upper) {
            cp = needed = seen = 0;
            lower = 0x80;
            upper = 0xbf;
            s += "\ufffd";
            i--;
            continue;
          }
          lower = 0x80;
          upper = 0xbf;
          cp = (cp << 6) | (b & 0x3f);
          if (++seen === needed) {
            s += String.fromCodePoint(cp);
            cp = needed = seen = 0;
          }
        }
        if (needed !== 0) s += "\ufffd";
        return s;
      };
      const HEX = "0123456789ABCDEF";
      const pctByte = (b) => "%" + HEX[b >> 4] + HEX[b & 15];
      const inList = (list) => (c) => list.includes(c);
      // The encode sets, as predicates on a code point.
      const c0Set = (c) => c < 0x20 || c > 0x7e;
      const fragmentSet = (c) => c0Set(c) || inList([0x20, 0x22, 0x3c, 0x3e, 0x60])(c);
      const querySet = (c) => c0Set(c) || inList([0x20, 0x22, 0x23, 0x3c, 0x3e])(c);
      const specialQuerySet = (c) => querySet(c) || c === 0x27;
      // The path set, leaving U+005E (^) unescaped as Deno's native URL does.
      const pathSet = (c) => querySet(c) || inList([0x3f, 0x60, 0x7b, 0x7d])(c);
      const userinfoSet = (c) =>
        pathSet(c) || inList([0x2f, 0x3a, 0x3b, 0x3d, 0x40, 0x5b, 0x5c, 0x5d, 0x5e, 0x7c])(c);
      const pctEncode = (s, set) => {
        let out = "";
        for (const ch of s) {
          if (set(ch.codePointAt(0))) for (const b of utf8Encode(ch)) out += pctByte(b);
          else out += ch;
        }
        return out;
      };
      const isHexDigit = (ch) => ch !== undefined && /^[0-9A-Fa-f]$/.test(ch);
      const pctDecodeBytes = (bytes) => {
        const out = [];
        const hexOf = (b) => (b !== undefined && isHexDigit(String.fromCharCode(b)) ? parseInt(String.fromCharCode(b), 16) : -1);
        for (let i = 0; i < bytes.length; i++) {
          const hi = hexOf(bytes[i + 1]);
          const lo = hexOf(bytes[i + 2]);
          if (bytes[i] === 0x25 && hi >= 0 && lo >= 0) {
            out.push(hi * 16 + lo);
            i += 2;
          } else out.push(bytes[i]);
        }
        return out;
      };
      const isAlpha = (ch) => ch !== undefined && /^[A-Za-z]$/.test(ch);
      const isDigit = (ch) => ch !== undefined && /^[0-9]$/.test(ch);

      // -- hosts --
      const FORBIDDEN_HOST = [0x0, 0x9, 0xa, 0xd, 0x20, 0x23, 0x2f, 0x3a, 0x3c, 0x3e, 0x3f, 0x40, 0x5b,
        0x5c, 0x5d, 0x5e, 0x7c];
      const forbiddenHost = (c) => FORBIDDEN_HOST.includes(c);
      const forbiddenDomain = (c) => forbiddenHost(c) || c <= 0x1f || c === 0x25 || c === 0x7f;
      function parseIPv4Number(s) {
        if (s === "") return FAILURE;
        let radix = 10;
        if (/^0[xX]/.test(s)) {
          s = s.slice(2);
          radix = 16;
        } else if (s.length >= 2 && s[0] === "0") {
          s = s.slice(1);
          radix = 8;
        }
        if (s === "") return 0;
        const digits = radix === 16 ? /^[0-9A-Fa-f]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
        if (!digits.test(s)) return FAILURE;
        return parseInt(s, radix);
      }
      function endsInANumber(s) {
        const parts = s.split(".");
        if (parts[parts.length - 1] === "") {
          if (parts.length === 1) return false;
          parts.pop();
        }
        const last = parts[parts.length - 1];
        if (/^[0-9]+$/.test(last)) return true;
        return parseIPv4Number(last) !== FAILURE && /^0[xX]/.test(last);
      }
      function parseIPv4(s) {
        const parts = s.split(".");
        if (parts[parts.length - 1] === "" && parts.length > 1) parts.pop();
        if (parts.length > 4) return FAILURE;
        const numbers = [];
        for (const p of parts) {
          const n = parseIPv4Number(p);
          if (n === FAILURE) return FAILURE;
          numbers.push(n);
        }
        for (let i = 0; i < numbers.length - 1; i++) if (numbers[i] > 255) return FAILURE;
        if (numbers[numbers.length - 1] >= 256 ** (5 - numbers.length)) return FAILURE;
        let v = numbers[numbers.length - 1];
        for (let i = 0; i < numbers.length - 1; i++) v += numbers[i] * 256 ** (3 - i);
        return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
      }
      function parseIPv6(text) {
        const s = Array.from(text);
        const address = [0, 0, 0, 0, 0, 0, 0, 0];
        let piece = 0;
        let compress = null;
        let p = 0;
        if (s[p] === ":") {
          if (s[p + 1] !== ":") return FAILURE;
          p += 2;
          compress = ++piece;
        }
        while (s[p] !== undefined) {
          if (piece === 8) return FAILURE;
          if (s[p] === ":") {
            if (compress !== null) return FAILURE;
            p++;
            compress = ++piece;
            continue;
          }
          let value = 0;
          let length = 0;
          while (length < 4 && isHexDigit(s[p])) {
            value = value * 16 + parseInt(s[p], 16);
            p++;
            length++;
          }
          if (s[p] === ".") {
            if (length === 0) return FAILURE;
            p -= length;
            if (piece > 6) return FAILURE;
            let numbersSeen = 0;
            while (s[p] !== undefined) {
              let v4 = null;
              if (numbersSeen > 0) {
                if (s[p] === "." && numbersSeen < 4) p++;
                else return FAILURE;
              }
              if (!isDigit(s[p])) return FAILURE;
              while (isDigit(s[p])) {
                const n = Number(s[p]);
                if (v4 === null) v4 = n;
                else if (v4 === 0) return FAILURE;
                else v4 = v4 * 10 + n;
                if (v4 > 255) return FAILURE;
                p++;
              }
              address[piece] = address[piece] * 0x100 + v4;
              numbersSeen++;
              if (numbersSeen === 2 || numbersSeen === 4) piece++;
            }
            if (numbersSeen !== 4) return FAILURE;
            break;
          } else if (s[p] === ":") {
            p++;
            if (s[p] === undefined) return FAILURE;
          } else if (s[p] !== undefined) return FAILURE;
          address[piece++] = value;
        }
        if (compress !== null) {
          let swaps = piece - compress;
          piece = 7;
          while (piece !== 0 && swaps > 0) {
            const t = address[piece];
            address[piece] = address[compress + swaps - 1];
            address[compress + swaps - 1] = t;
            piece--;
            swaps--;
          }
        } else if (piece !== 8) return FAILURE;
        return address;
      }
      function serializeIPv6(address) {
        // the first longest run of two or more zero pieces is compressed to "::"
        let best = -1;
        let bestLen = 1;
        for (let i = 0; i < 8; ) {
          let j = i;
          while (j < 8 && address[j] === 0) j++;
          if (j - i > bestLen) {
            best = i;
            bestLen = j - i;
          }
          i = j === i ? i + 1 : j;
        }
        let out = "";
        let ignore0 = false;
        for (let i = 0; i < 8; i++) {
          if (ignore0 && address[i] === 0) continue;
          ignore0 = false;
          if (i === best) {
            out += i === 0 ? "::" : ":";
            ignore0 = true;
            continue;
          }
          out += address[i].toString(16);
          if (i !== 7) out += ":";
        }
        return out;
      }
      function idnaUnsupported(input) {
        return new TypeErrorCtor(`IDNA is not supported: the host name ${stringify(input)} is not ASCII`);
      }
      function parseHost(input, isOpaque) {
        if (input[0] === "[") {
          if (input[input.length - 1] !== "]") return FAILURE;
          const a = parseIPv6(input.slice(1, -1));
          return a === FAILURE ? FAILURE : "[" + serializeIPv6(a) + "]";
        }
        if (isOpaque) {
          for (const ch of input) if (forbiddenHost(ch.codePointAt(0))) return FAILURE;
          return pctEncode(input, c0Set);
        }
        const bytes = pctDecodeBytes(utf8Encode(input));
        if (bytes.some((b) => b >= 0x80)) throw idnaUnsupported(input);
        // UTS #46 maps ASCII by lowercasing it
        const domain = String.fromCharCode(...bytes).toLowerCase();
        if (domain === "") return FAILURE;
        for (let i = 0; i < domain.length; i++) if (forbiddenDomain(domain.charCodeAt(i))) return FAILURE;
        if (endsInANumber(domain)) return parseIPv4(domain);
        return domain;
      }

      // -- the basic URL parser --
      // A URL record: {scheme, username, password, host (null or serialized), port (null or a
      // number), path (a list of segments, or a string when opaque), query, fragment (null or a
      // string)}.
      const S = {
        SCHEME_START: 1, SCHEME: 2, NO_SCHEME: 3, SPECIAL_RELATIVE_OR_AUTHORITY: 4, PATH_OR_AUTHORITY: 5,
        RELATIVE: 6, RELATIVE_SLASH: 7, SPECIAL_AUTHORITY_SLASHES: 8, SPECIAL_AUTHORITY_IGNORE_SLASHES: 9,
        AUTHORITY: 10, HOST: 11, HOSTNAME: 12, PORT: 13, FILE: 14, FILE_SLASH: 15, FILE_HOST: 16,
        PATH_START: 17, PATH: 18, OPAQUE_PATH: 19, QUERY: 20, FRAGMENT: 21,
      };
      const newRecord = () => ({
        scheme: "", username: "", password: "", host: null, port: null, path: [], query: null,
        fragment: null,
      });
      const isSpecial = (url) => isSpecialScheme(url.scheme);
      const hasOpaquePath = (url) => typeof url.path === "string";
      const includesCredentials = (url) => url.username !== "" || url.password !== "";
      const cannotHaveCredentialsOrPort = (url) =>
        url.host === null || url.host === "" || url.scheme === "file";
      const isDriveLetter = (s) => s.length === 2 && isAlpha(s[0]) && (s[1] === ":" || s[1] === "|");
      const isNormalizedDriveLetter = (s) => isDriveLetter(s) && s[1] === ":";
      const startsWithDriveLetter = (cps, p) =>
        cps.length - p >= 2 &&
        isDriveLetter(cps[p] + cps[p + 1]) &&
        (cps.length - p === 2 || "/\\?#".includes(cps[p + 2]));
      const isSingleDot = (s) => s === "." || s.toLowerCase() === "%2e";
      const isDoubleDot = (s) => ["..", ".%2e", "%2e.", "%2e%2e"].includes(s.toLowerCase());
      function shortenPath(url) {
        const path = url.path;
        if (url.scheme === "file" && path.length === 1 && isNormalizedDriveLetter(path[0])) return;
        path.pop();
      }

      function basicParse(inputString, base, givenUrl, stateOverride) {
        let input = inputString;
        let url = givenUrl;
        if (!url) {
          url = newRecord();
          input = input.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "");
        }
        input = input.replace(/[\t\n\r]/g, "");
        const cps = Array.from(input);
        let state = stateOverride || S.SCHEME_START;
        let buffer = "";
        let atSignSeen = false;
        let insideBrackets = false;
        let passwordTokenSeen = false;
        const remainingStartsWith = (p, ch) => cps[p + 1] === ch;

        for (let p = 0; p <= cps.length; p++) {
          const c = cps[p];
          const special = isSpecial(url);
          switch (state) {
            case S.SCHEME_START:
              if (isAlpha(c)) {
                buffer += c.toLowerCase();
                state = S.SCHEME;
              } else if (!stateOverride) {
                state = S.NO_SCHEME;
                p--;
              } else return FAILURE;
              break;
            case S.SCHEME:
              if (c !== undefined && /^[A-Za-z0-9+\-.]$/.test(c)) buffer += c.toLowerCase();
              else if (c === ":") {
                if (stateOverride) {
                  if (isSpecialScheme(url.scheme) !== isSpecialScheme(buffer)) return url;
                  if ((includesCredentials(url) || url.port !== null) && buffer === "file") return url;
                  if (url.scheme === "file" && url.host === "") return url;
                }
                url.scheme = buffer;
                if (stateOverride) {
                  if (url.port === defaultPort(url.scheme)) url.port = null;
                  return url;
                }
                buffer = "";
                if (url.scheme === "file") state = S.FILE;
                else if (isSpecial(url) && base && base.scheme === url.scheme) {
                  state = S.SPECIAL_RELATIVE_OR_AUTHORITY;
                } else if (isSpecial(url)) state = S.SPECIAL_AUTHORITY_SLASHES;
                else if (remainingStartsWith(p, "/")) {
                  state = S.PATH_OR_AUTHORITY;
                  p++;
                } else {
                  url.path = "";
                  state = S.OPAQUE_PATH;
                }
              } else if (!stateOverride) {
                buffer = "";
                state = S.NO_SCHEME;
                p = -1;
              } else return FAILURE;
              break;
            case S.NO_SCHEME:
              if (!base || (hasOpaquePath(base) && c !== "#")) return FAILURE;
              if (hasOpaquePath(base) && c === "#") {
                url.scheme = base.scheme;
                url.path = base.path;
                url.query = base.query;
                url.fragment = "";
                state = S.FRAGMENT;
              } else if (base.scheme !== "file") {
                state = S.RELATIVE;
                p--;
              } else {
                state = S.FILE;
                p--;
              }
              break;
            case S.SPECIAL_RELATIVE_OR_AUTHORITY:
              if (c === "/" && remainingStartsWith(p, "/")) {
                state = S.SPECIAL_AUTHORITY_IGNORE_SLASHES;
                p++;
              } else {
                state = S.RELATIVE;
                p--;
              }
              break;
            case S.PATH_OR_AUTHORITY:
              if (c === "/") state = S.AUTHORITY;
              else {
                state = S.PATH;
                p--;
              }
              break;
            case S.RELATIVE:
              url.scheme = base.scheme;
              if (c === "/" || (isSpecial(url) && c === "\\")) state = S.RELATIVE_SLASH;
              else {
                url.username = base.username;
                url.password = base.password;
                url.host = base.host;
                url.port = base.port;
                url.path = base.path.slice();
                url.query = base.query;
                if (c === "?") {
                  url.query = "";
                  state = S.QUERY;
                } else if (c === "#") {
                  url.fragment = "";
                  state = S.FRAGMENT;
                } else if (c !== undefined) {
                  url.query = null;
                  shortenPath(url);
                  state = S.PATH;
                  p--;
                }
              }
              break;
            case S.RELATIVE_SLASH:
              if (special && (c === "/" || c === "\\")) state = S.SPECIAL_AUTHORITY_IGNORE_SLASHES;
              else if (c === "/") state = S.AUTHORITY;
              else {
                url.username = base.username;
                url.password = base.password;
                url.host = base.host;
                url.port = base.port;
                state = S.PATH;
                p--;
              }
              break;
            case S.SPECIAL_AUTHORITY_SLASHES:
              state = S.SPECIAL_AUTHORITY_IGNORE_SLASHES;
              if (c === "/" && remainingStartsWith(p, "/")) p++;
              else p--;
              break;
            case S.SPECIAL_AUTHORITY_IGNORE_SLASHES:
              if (c !== "/" && c !== "\\") {
                state = S.AUTHORITY;
                p--;
              }
              break;
            case S.AUTHORITY:
              if (c === "@") {
                if (atSignSeen) buffer = "%40" + buffer;
                atSignSeen = true;
                for (const ch of buffer) {
                  if (ch === ":" && !passwordTokenSeen) {
                    passwordTokenSeen = true;
                    continue;
                  }
                  const encoded = pctEncode(ch, userinfoSet);
                  if (passwordTokenSeen) url.password += encoded;
                  else url.username += encoded;
                }
                buffer = "";
              } else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\")) {
                if (atSignSeen && buffer === "") return FAILURE;
                p -= Array.from(buffer).length + 1;
                buffer = "";
                state = S.HOST;
              } else buffer += c;
              break;
            case S.HOST:
            case S.HOSTNAME:
              if (stateOverride && url.scheme === "file") {
                p--;
                state = S.FILE_HOST;
              } else if (c === ":" && !insideBrackets) {
                if (buffer === "") return FAILURE;
                if (stateOverride === S.HOSTNAME) return FAILURE;
                const host = parseHost(buffer, !special);
                if (host === FAILURE) return FAILURE;
                url.host = host;
                buffer = "";
                state = S.PORT;
              } else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\")) {
                p--;
                if (special && buffer === "") return FAILURE;
                if (stateOverride && buffer === "" && (includesCredentials(url) || url.port !== null)) {
                  return FAILURE;
                }
                const host = parseHost(buffer, !special);
                if (host === FAILURE) return FAILURE;
                url.host = host;
                buffer = "";
                state = S.PATH_START;
                if (stateOverride) return url;
              } else {
                if (c === "[") insideBrackets = true;
                if (c === "]") insideBrackets = false;
                buffer += c;
              }
              break;
            case S.PORT:
              if (isDigit(c)) buffer += c;
              else if (c === undefined || c === "/" || c === "?" || c === "#" || (special && c === "\\") || stateOverride) {
                if (buffer !== "") {
                  const port = /^0*$/.test(buffer) ? 0 : buffer.replace(/^0+/, "").length > 5 ? 65536 : Number(buffer);
                  if (port > 65535) return FAILURE;
                  url.port = port === defaultPort(url.scheme) ? null : port;
                  buffer = "";
                }
                if (stateOverride) return url;
                state = S.PATH_START;
                p--;
              } else return FAILURE;
              break;
            case S.FILE:
              url.scheme = "file";
              url.host = "";
              if (c === "/" || c === "\\") state = S.FILE_SLASH;
              else if (base && base.scheme === "file") {
                url.host = base.host;
                url.path = base.path.slice();
                url.query = base.query;
                if (c === "?") {
                  url.query = "";
                  state = S.QUERY;
                } else if (c === "#") {
                  url.fragment = "";
                  state = S.FRAGMENT;
                } else if (c !== undefined) {
                  url.query = null;
                  if (!startsWithDriveLetter(cps, p)) shortenPath(url);
                  else url.path = [];
                  state = S.PATH;
                  p--;
                }
              } else {
                state = S.PATH;
                p--;
              }
              break;
            case S.FILE_SLASH:
              if (c === "/" || c === "\\") state = S.FILE_HOST;
              else {
                if (base && base.scheme === "file") {
                  url.host = base.host;
                  if (!startsWithDriveLetter(cps, p) && base.path.length > 0 && isNormalizedDriveLetter(base.path[0])) {
                    url.path.push(base.path[0]);
                  }
                }
                state = S.PATH;
                p--;
              }
              break;
            case S.FILE_HOST:
              if (c === undefined || c === "/" || c === "\\" || c === "?" || c === "#") {
                p--;
                if (!stateOverride && isDriveLetter(buffer)) state = S.PATH;
                else if (buffer === "") {
                  url.host = "";
                  if (stateOverride) return url;
                  state = S.PATH_START;
                } else {
                  let host = parseHost(buffer, !special);
                  if (host === FAILURE) return FAILURE;
                  if (host === "localhost") host = "";
                  url.host = host;
                  if (stateOverride) return url;
                  buffer = "";
                  state = S.PATH_START;
                }
              } else buffer += c;
              break;
            case S.PATH_START:
              if (special) {
                state = S.PATH;
                if (c !== "/" && c !== "\\") p--;
              } else if (!stateOverride && c === "?") {
                url.query = "";
                state = S.QUERY;
              } else if (!stateOverride && c === "#") {
                url.fragment = "";
                state = S.FRAGMENT;
              } else if (c !== undefined) {
                state = S.PATH;
                if (c !== "/") p--;
              } else if (stateOverride && url.host === null) url.path.push("");
              break;
            case S.PATH:
              if (c === undefined || c === "/" || (special && c === "\\") || (!stateOverride && (c === "?" || c === "#"))) {
                const slash = c === "/" || (special && c === "\\");
                if (isDoubleDot(buffer)) {
                  shortenPath(url);
                  if (!slash) url.path.push("");
                } else if (isSingleDot(buffer) && !slash) url.path.push("");
                else if (!isSingleDot(buffer)) {
                  if (url.scheme === "file" && url.path.length === 0 && isDriveLetter(buffer)) {
                    buffer = buffer[0] + ":";
                  }
                  url.path.push(buffer);
                }
                buffer = "";
                if (c === "?") {
                  url.query = "";
                  state = S.QUERY;
                } else if (c === "#") {
                  url.fragment = "";
                  state = S.FRAGMENT;
                }
              } else buffer += pctEncode(c, pathSet);
              break;
            case S.OPAQUE_PATH:
              if (c === "?") {
                url.query = "";
                state = S.QUERY;
              } else if (c === "#") {
                url.fragment = "";
                state = S.FRAGMENT;
              } else if (c !== undefined) url.path += pctEncode(c, c0Set);
              break;
            case S.QUERY:
              if ((!stateOverride && c === "#") || c === undefined) {
                url.query += pctEncode(buffer, special ? specialQuerySet : querySet);
                buffer = "";
                if (c === "#") {
                  url.fragment = "";
                  state = S.FRAGMENT;
                }
              } else buffer += c;
              break;
            case S.FRAGMENT:
              if (c !== undefined) url.fragment += pctEncode(c, fragmentSet);
              break;
          }
        }
        return url;
      }

      function serializePath(url) {
        if (hasOpaquePath(url)) return url.path;
        let out = "";
        for (const seg of url.path) out += "/" + seg;
        return out;
      }
      function serializeURL(url, excludeFragment) {
        let out = url.scheme + ":";
        if (url.host !== null) {
          out += "//";
          if (includesCredentials(url)) {
            out += url.username;
            if (url.password !== "") out += ":" + url.password;
            out += "@";
          }
          out += url.host;
          if (url.port !== null) out += ":" + url.port;
        } else if (!hasOpaquePath(url) && url.path.length > 1 && url.path[0] === "") out += "/.";
        out += serializePath(url);
        if (url.query !== null) out += "?" + url.query;
        if (!excludeFragment && url.fragment !== null) out += "#" + url.fragment;
        return out;
      }
      function serializeOrigin(url) {
        switch (url.scheme) {
          case "blob": {
            if (!hasOpaquePath(url)) return "null";
            const inner = basicParse(url.path, null);
            return inner !== FAILURE && (inner.scheme === "http" || inner.scheme === "https")
              ? serializeOrigin(inner)
              : "null";
          }
          case "ftp":
          case "http":
          case "https":
          case "ws":
          case "wss":
            return url.scheme + "://" + url.host + (url.port === null ? "" : ":" + url.port);
          default:
            return "null";
        }
      }
      // The standard's "potentially strip trailing spaces from an opaque path".
      function stripTrailingSpaces(url) {
        if (!hasOpaquePath(url) || url.fragment !== null || url.query !== null) return;
        url.path = url.path.replace(/ +$/, "");
      }

      // -- application/x-www-form-urlencoded --
      function formParse(input) {
        const list = [];
        for (const sequence of input.split("&")) {
          if (sequence === "") continue;
          const eq = sequence.indexOf("=");
          const name = eq < 0 ? sequence : sequence.slice(0, eq);
          const value = eq < 0 ? "" : sequence.slice(eq + 1);
          const decode = (s) => utf8Decode(pctDecodeBytes(utf8Encode(s.replace(/\+/g, " "))));
          list.push([decode(name), decode(value)]);
        }
        return list;
      }
      function formEncode(s) {
        let out = "";
        for (const b of utf8Encode(s)) {
          if (b === 0x20) out += "+";
          else if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
            b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f) {
            out += String.fromCharCode(b);
          } else out += pctByte(b);
        }
        return out;
      }
      const formSerialize = (list) => list.map(([n, v]) => formEncode(n) + "=" + formEncode(v)).join("&");

      // -- the classes --
      // Internal state lives in WeakMaps, so instances have no own properties (as in Deno).
      const urls = new WeakMap();
      const paramsState = new WeakMap();
      const urlOfThis = (self) => {
        const s = urls.get(self);
        if (s === undefined) throw new TypeErrorCtor("Illegal invocation: not a URL");
        return s;
      };
      const paramsOfThis = (self) => {
        const s = paramsState.get(self);
        if (s === undefined) throw new TypeErrorCtor("Illegal invocation: not a URLSearchParams");
        return s;
      };
      const needArgs = (what, got, n) => {
        if (got < n) {
          throw new TypeErrorCtor(`${what}: ${n} argument${n === 1 ? "" : "s"} required, but only ${got} present`);
        }
      };
      function parseWithBase(input, base) {
        let parsedBase = null;
        const text = usv(input);
        if (base !== undefined) {
          parsedBase = basicParse(usv(base), null);
          if (parsedBase === FAILURE) throw new TypeErrorCtor(`Invalid URL: '${text}' with base '${usv(base)}'`);
        }
        const url = basicParse(text, parsedBase);
        if (url === FAILURE) {
          throw new TypeErrorCtor(
            parsedBase === null ? `Invalid URL: '${text}'` : `Invalid URL: '${text}' with base '${usv(base)}'`,
          );
        }
        return url;
      }
      // The standard's "URLSearchParams update steps": the list written back to the URL's query.
      function updateURL(state) {
        if (state.url === null) return;
        const u = urlOfThis(state.url);
        const serialized = formSerialize(state.list);
        u.record.query = serialized === "" ? null : serialized;
        if (serialized === "") stripTrailingSpaces(u.record);
      }

      URLSearchParamsImpl = class URLSearchParams {
        constructor(init = "") {
          let list;
          if (init !== null && (typeof init === "object" || typeof init === "function")) {
            if (typeof init[Symbol.iterator] === "function") {
              list = [];
              for (const pair of init) {
                if (pair === null || (typeof pair !== "object" && typeof pair !== "function")) {
                  throw new TypeErrorCtor("URLSearchParams: each pair must be a sequence");
                }
                const p = ArrayFrom(pair);
                if (p.length !== 2) {
                  throw new TypeErrorCtor("URLSearchParams: each pair must have exactly two items");
                }
                list.push([usv(p[0]), usv(p[1])]);
              }
            } else list = ObjectKeys(init).map((k) => [usv(k), usv(init[k])]);
          } else {
            const s = usv(init);
            list = formParse(s[0] === "?" ? s.slice(1) : s);
          }
          paramsState.set(this, { list, url: null });
        }
        get size() {
          return paramsOfThis(this).list.length;
        }
        append(name, value) {
          needArgs("URLSearchParams.append", arguments.length, 2);
          const s = paramsOfThis(this);
          s.list.push([usv(name), usv(value)]);
          updateURL(s);
        }
        delete(name, value) {
          needArgs("URLSearchParams.delete", arguments.length, 1);
          const s = paramsOfThis(this);
          const n = usv(name);
          const v = value === undefined ? undefined : usv(value);
          s.list = s.list.filter(([k, x]) => !(k === n && (v === undefined || x === v)));
          updateURL(s);
        }
        get(name) {
          needArgs("URLSearchParams.get", arguments.length, 1);
          const n = usv(name);
          const e = paramsOfThis(this).list.find(([k]) => k === n);
          return e === undefined ? null : e[1];
        }
        getAll(name) {
          needArgs("URLSearchParams.getAll", arguments.length, 1);
          const n = usv(name);
          return paramsOfThis(this).list.filter(([k]) => k === n).map(([, v]) => v);
        }
        has(name, value) {
          needArgs("URLSearchParams.has", arguments.length, 1);
          const n = usv(name);
          const v = value === undefined ? undefined : usv(value);
          return paramsOfThis(this).list.some(([k, x]) => k === n && (v === undefined || x === v));
        }
        set(name, value) {
          needArgs("URLSearchParams.set", arguments.length, 2);
          const s = paramsOfThis(this);
          const n = usv(name);
          const v = usv(value);
          const i = s.list.findIndex(([k]) => k === n);
          if (i < 0) s.list.push([n, v]);
          else {
            s.list[i] = [n, v];
            s.list = s.list.filter(([k], j) => j <= i || k !== n);
          }
          updateURL(s);
        }
        // Stable, by the names' UTF-16 code units (JavaScript's string order).
        sort() {
          const s = paramsOfThis(this);
          s.list = s.list
            .map((e, i) => [e, i])
            .sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j))
            .map(([e]) => e);
          updateURL(s);
        }
        forEach(callback, thisArg = undefined) {
          needArgs("URLSearchParams.forEach", arguments.length, 1);
          if (typeof callback !== "function") {
            throw new TypeErrorCtor("URLSearchParams.forEach: the callback must be a function");
          }
          const s = paramsOfThis(this);
          for (let i = 0; i < s.list.length; i++) callback.call(thisArg, s.list[i][1], s.list[i][0], this);
        }
        keys() {
          return paramsIterator(paramsOfThis(this), (e) => e[0]);
        }
        values() {
          return paramsIterator(paramsOfThis(this), (e) => e[1]);
        }
        entries() {
          return paramsIterator(paramsOfThis(this), (e) => [e[0], e[1]]);
        }
        toString() {
          return formSerialize(paramsOfThis(this).list);
        }
      };
      // Iterators read the live list, as the standard's iterators do.
      const ParamsIteratorProto = Object.create(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())), {
        [Symbol.toStringTag]: { value: "URLSearchParams Iterator", configurable: true },
      });
      function paramsIterator(state, pick) {
        let i = 0;
        const it = Object.create(ParamsIteratorProto);
        it.next = function next() {
          if (i >= state.list.length) return { value: undefined, done: true };
          return { value: pick(state.list[i++]), done: false };
        };
        Object.defineProperty(it, "next", { enumerable: false });
        return it;
      }
      Object.defineProperty(URLSearchParamsImpl.prototype, Symbol.iterator, {
        value: URLSearchParamsImpl.prototype.entries,
        writable: true,
        configurable: true,
      });
      Object.defineProperty(URLSearchParamsImpl.prototype, Symbol.toStringTag, {
        value: "URLSearchParams",
        configurable: true,
      });
      const URLSearchParamsCtor = URLSearchParamsImpl;

      URLImpl = class URL {
        constructor(url, base = undefined) {
          needArgs("URL", arguments.length, 1);
          const record = parseWithBase(url, base);
          urls.set(this, { record, params: null });
        }
        static canParse(url, base = undefined) {
          needArgs("URL.canParse", arguments.length, 1);
          try {
            parseWithBase(url, base);
            return true;
          } catch (e) {
            if (e instanceof TypeErrorCtor && !String(e.message).startsWith("IDNA")) return false;
            throw e;
          }
        }
        static parse(url, base = undefined) {
          needArgs("URL.parse", arguments.length, 1);
          try {
            return new URL(url, base);
          } catch (e) {
            if (e instanceof TypeErrorCtor && !String(e.message).startsWith("IDNA")) return null;
            throw e;
          }
        }
        get href() {
          return serializeURL(urlOfThis(this).record, false);
        }
        set href(value) {
          const u = urlOfThis(this);
          const text = usv(value);
          const record = basicParse(text, null);
          if (record === FAILURE) throw new TypeErrorCtor(`Invalid URL: '${text}'`);
          u.record = record;
          if (u.params !== null) paramsOfThis(u.params).list = formParse(record.query || "");
        }
        get origin() {
          return serializeOrigin(urlOfThis(this).record);
        }
        get protocol() {
          return urlOfThis(this).record.scheme + ":";
        }
        set protocol(value) {
          const u = urlOfThis(this);
          setWith(u, usv(value) + ":", S.SCHEME_START);
        }
        get username() {
          return urlOfThis(this).record.username;
        }
        set username(value) {
          const r = urlOfThis(this).record;
          if (cannotHaveCredentialsOrPort(r)) return;
          r.username = pctEncode(usv(value), userinfoSet);
        }
        get password() {
          return urlOfThis(this).record.password;
        }
        set password(value) {
          const r = urlOfThis(this).record;
          if (cannotHaveCredentialsOrPort(r)) return;
          r.password = pctEncode(usv(value), userinfoSet);
        }
        get host() {
          const r = urlOfThis(this).record;
          if (r.host === null) return "";
          return r.port === null ? r.host : r.host + ":" + r.port;
        }
        set host(value) {
          const u = urlOfThis(this);
          if (hasOpaquePath(u.record)) return;
          setWith(u, usv(value), S.HOST);
        }
        get hostname() {
          const r = urlOfThis(this).record;
          return r.host === null ? "" : r.host;
        }
        set hostname(value) {
          const u = urlOfThis(this);
          if (hasOpaquePath(u.record)) return;
          setWith(u, usv(value), S.HOSTNAME);
        }
        get port() {
          const r = urlOfThis(this).record;
          return r.port === null ? "" : String(r.port);
        }
        set port(value) {
          const u = urlOfThis(this);
          if (cannotHaveCredentialsOrPort(u.record)) return;
          const v = usv(value);
          if (v === "") u.record.port = null;
          else setWith(u, v, S.PORT);
        }
        get pathname() {
          return serializePath(urlOfThis(this).record);
        }
        set pathname(value) {
          const u = urlOfThis(this);
          if (hasOpaquePath(u.record)) return;
          u.record.path = [];
          setWith(u, usv(value), S.PATH_START);
        }
        get search() {
          const q = urlOfThis(this).record.query;
          return q === null || q === "" ? "" : "?" + q;
        }
        set search(value) {
          const u = urlOfThis(this);
          const v = usv(value);
          if (v === "") {
            u.record.query = null;
            if (u.params !== null) paramsOfThis(u.params).list = [];
            stripTrailingSpaces(u.record);
            return;
          }
          const input = v[0] === "?" ? v.slice(1) : v;
          u.record.query = "";
          setWith(u, input, S.QUERY);
          if (u.params !== null) paramsOfThis(u.params).list = formParse(input);
        }
        get searchParams() {
          const u = urlOfThis(this);
          if (u.params === null) {
            u.params = new URLSearchParamsCtor(u.record.query || "");
            paramsOfThis(u.params).url = this;
          }
          return u.params;
        }
        get hash() {
          const f = urlOfThis(this).record.fragment;
          return f === null || f === "" ? "" : "#" + f;
        }
        set hash(value) {
          const u = urlOfThis(this);
          const v = usv(value);
          if (v === "") {
            u.record.fragment = null;
            stripTrailingSpaces(u.record);
            return;
          }
          u.record.fragment = "";
          setWith(u, v[0] === "#" ? v.slice(1) : v, S.FRAGMENT);
        }
        toString() {
          return serializeURL(urlOfThis(this).record, false);
        }
        toJSON() {
          return serializeURL(urlOfThis(this).record, false);
        }
      };
      // Setters parse into the URL itself, as the standard does: a host setter whose port is out
      // of range still sets the host name.
      function setWith(u, input, stateOverride) {
        basicParse(input, null, u.record, stateOverride);
      }
      Object.defineProperty(URLImpl.prototype, Symbol.toStringTag, { value: "URL", configurable: true });
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
        // `Lit.Headers`: only what the caller passed with the request (asked before user code)
        const headers = await call("headers", {});
        const Lit = ObjectFreeze({
          Actions: LitActions,
          Auth: deepFreeze(auth),
          Headers: deepFreeze(headers),
        });
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
        if (globalThis.URL === undefined) globals.URL = URLImpl;
        if (globalThis.URLSearchParams === undefined) globals.URLSearchParams = URLSearchParamsImpl;
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
