// The `ethers` global (ethers v5, from the npm package's own browser bundle, which the node
// operator installs: see `src/engine/ethers.rs`). Both engines evaluate this file after the
// prelude and before user code; it is an expression, a function the engine calls once with
// `load` (a function returning the bundle's exports, or `null` when the node has no bundle) and
// `missing` (the message of the error a use of `ethers` throws on a node without it).
//
// `ethers` is a getter that loads the bundle on first use and then replaces itself with a plain
// data property, so an action that never touches `ethers` pays nothing for it. An action may
// assign `ethers` (or pass a `jsParams.ethers`) like any global.
(function installEthers(load, missing) {
  "use strict";
  const defineProperty = Object.defineProperty;
  const ReferenceErrorCtor = ReferenceError;
  function define(value) {
    defineProperty(globalThis, "ethers", {
      value,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  defineProperty(globalThis, "ethers", {
    configurable: true,
    enumerable: false,
    get() {
      if (load === null) throw new ReferenceErrorCtor(missing);
      const value = load();
      define(value);
      return value;
    },
    set(value) {
      define(value);
    },
  });
})
