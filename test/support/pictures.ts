// Test pictures: smooth seeded RGB images, so distinct seeds give distinct perceptual hashes.

import sharp, { type Sharp } from 'sharp';

/** A raw RGB buffer of `w`×`h` pixels: a few sinusoids per channel, deterministic per seed. */
export function picture(w: number, h: number, seed: number): Buffer {
  let s = seed * 2654435761 + 1;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const waves = Array.from({ length: 9 }, () => [rnd() * 6, rnd() * 6, rnd() * 6.28, 40 + rnd() * 80]);
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 128;
        for (let k = c * 3; k < c * 3 + 3; k++) {
          const [fx, fy, ph, amp] = waves[k]!;
          v += amp! * 0.5 * Math.sin(((fx! * x) / w) * 6.28 + ((fy! * y) / h) * 6.28 + ph!);
        }
        buf[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return buf;
}

/** The same picture as a sharp pipeline over its raw pixels, ready to encode (`.jpeg()`, `.png()`…). */
export function pictureImage(w: number, h: number, seed: number): Sharp {
  return sharp(picture(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
}
