// SHA-1 (RFC 3174), for HMAC-SHA1 (hmac.js) where WebCrypto is missing: `crypto.subtle` exists
// only in secure contexts (HTTPS or localhost), so a console reached over plain http on a LAN
// address signs with this instead. Same digest as WebCrypto's, byte for byte.
import { padded, rotateLeft } from "./md5.js";

const ROUND_CONSTANTS = [0x5a827999, 0x6ed9eba1, 0x8f1bbcdc, 0xca62c1d6];

function roundFunction(t, b, c, d) {
  if (t < 20) return (b & c) | (~b & d);
  if (t < 40) return b ^ c ^ d;
  if (t < 60) return (b & c) | (b & d) | (c & d);
  return b ^ c ^ d;
}

/** The 20-byte SHA-1 digest of `bytes` (a Uint8Array). */
export function sha1(bytes) {
  const view = padded(bytes, false);
  const state = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const words = new Array(80);
  for (let offset = 0; offset < view.byteLength; offset += 64) {
    for (let t = 0; t < 16; t++) words[t] = view.getUint32(offset + t * 4, false);
    for (let t = 16; t < 80; t++) {
      words[t] = rotateLeft(words[t - 3] ^ words[t - 8] ^ words[t - 14] ^ words[t - 16], 1);
    }
    let [a, b, c, d, e] = state;
    for (let t = 0; t < 80; t++) {
      const next = (rotateLeft(a, 5) + roundFunction(t, b, c, d) + e + words[t]
        + ROUND_CONSTANTS[Math.floor(t / 20)]) | 0;
      e = d; d = c; c = rotateLeft(b, 30); b = a; a = next;
    }
    [a, b, c, d, e].forEach((word, i) => { state[i] = (state[i] + word) | 0; });
  }
  const digest = new DataView(new ArrayBuffer(20));
  state.forEach((word, i) => digest.setUint32(i * 4, word, false));
  return new Uint8Array(digest.buffer);
}
