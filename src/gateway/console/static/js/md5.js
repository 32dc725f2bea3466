// MD5 (RFC 1321). WebCrypto has no MD5, and Megam's signature covers base64(md5(body)).
// Not used for secrecy: it only fingerprints the body inside the HMAC. Its block padding and
// rotation are shared with sha1.js and sha256.js, which pad the same way.

const SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];
const CONSTANTS = Array.from({ length: 64 }, (_, i) =>
  Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0,
);

/**
 * `bytes` padded to whole 64-byte blocks the way MD5, SHA-1 and SHA-256 all pad: a 1 bit, zeros,
 * then the message length in bits as 64 bits, in the hash's byte order.
 */
export function padded(bytes, littleEndian) {
  const length = (((bytes.length + 8) >> 6) + 1) << 6;
  const out = new Uint8Array(length);
  out.set(bytes);
  out[bytes.length] = 0x80;
  const view = new DataView(out.buffer);
  const low = (bytes.length * 8) >>> 0;
  const high = Math.floor(bytes.length / 2 ** 29);
  view.setUint32(length - (littleEndian ? 8 : 4), low, littleEndian);
  view.setUint32(length - (littleEndian ? 4 : 8), high, littleEndian);
  return view;
}

export function rotateLeft(x, n) {
  return (x << n) | (x >>> (32 - n));
}

/** The 16-byte MD5 digest of `bytes` (a Uint8Array). */
export function md5(bytes) {
  const view = padded(bytes, true);
  let a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
  for (let offset = 0; offset < view.byteLength; offset += 64) {
    const words = Array.from({ length: 16 }, (_, i) => view.getUint32(offset + i * 4, true));
    let a = a0, b = b0, c = c0, d = d0;
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
      else { f = c ^ (b | ~d); g = (7 * i) % 16; }
      const next = (a + f + CONSTANTS[i] + words[g]) | 0;
      a = d; d = c; c = b;
      b = (b + rotateLeft(next, SHIFTS[i])) | 0;
    }
    a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
  }
  const digest = new DataView(new ArrayBuffer(16));
  [a0, b0, c0, d0].forEach((word, i) => digest.setUint32(i * 4, word, true));
  return new Uint8Array(digest.buffer);
}

export function base64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
