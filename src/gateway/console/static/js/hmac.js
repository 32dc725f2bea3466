// HMAC (RFC 2104) over the pure-JS hashes, for browsers without WebCrypto (see sha1.js). api.js
// prefers `crypto.subtle` when it exists; both give the same signature.
import { sha1 } from "./sha1.js";
import { sha256 } from "./sha256.js";

/** The hashes of Megam's signature (megam/hmac.py); both work on 64-byte blocks. */
export const HASHES = { sha1, sha256 };
const BLOCK_BYTES = 64;

function concat(first, second) {
  const out = new Uint8Array(first.length + second.length);
  out.set(first);
  out.set(second, first.length);
  return out;
}

/** HMAC of `message` under `key` (both Uint8Array) with `hash`, one of HASHES. */
export function hmac(hash, key, message) {
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(key.length > BLOCK_BYTES ? hash(key) : key);
  const inner = block.map((byte) => byte ^ 0x36);
  const outer = block.map((byte) => byte ^ 0x5c);
  return hash(concat(outer, hash(concat(inner, message))));
}
