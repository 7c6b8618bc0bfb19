/**
 * What an image file is, read from its first bytes before any decoder runs:
 * the format (by content, so a PNG named .jpg still works and a text file
 * named .jpg gets a clear message), the size (so a 20000 x 20000 image is
 * refused before its 1.6 GB of pixels are allocated) and, for JPEG, the EXIF
 * orientation (so the CLI shows photos the right way up, like the browser).
 * Pure: reads the bytes given, never more, never allocates by their word.
 */
import { VptError } from '../errors';

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** EXIF orientation 1-8 (1 = as stored); always 1 except for JPEG. */
  orientation: number;
}

/** Decoded pixels above this are refused: 100 MP is 400 MB of RGBA. */
export const MAX_PIXELS = 100e6;

const TITLE: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', gif: 'GIF', bmp: 'BMP', webp: 'WebP' };

function formatOf(b: Uint8Array): ImageFormat | null {
  const at = (i: number, ...xs: number[]) => xs.every((x, k) => b[i + k] === x);
  if (at(0, 0x89, 0x50, 0x4e, 0x47)) return 'png'; // the rest of the 8-byte signature is checked with IHDR
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38) && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61) return 'gif';
  if (at(0, 0x42, 0x4d) && b.byteLength >= 26) return 'bmp';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  return null;
}

/** A hint at what the file is instead, for the error message. */
function whatElse(b: Uint8Array): string {
  if (b[0] === 0x50 && b[1] === 0x4b) return ' (it is a zip archive)';
  if (b.byteLength >= 9 && b[8] === 0x7b) return ' (it looks like a safetensors file)';
  if (b[0] === 0x25 && b[1] === 0x50 && b[2] === 0x44 && b[3] === 0x46) return ' (it is a PDF)';
  if (b.subarray(0, 64).every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127))) return ' (it is text)';
  return '';
}

/** EXIF orientation from a JPEG APP1 segment's TIFF block, or 1. */
function exifOrientation(b: Uint8Array, start: number, end: number): number {
  // "Exif\0\0" then a TIFF header: byte order, 42, offset of IFD0.
  if (end - start < 14 || !(b[start] === 0x45 && b[start + 1] === 0x78 && b[start + 2] === 0x69 && b[start + 3] === 0x66)) return 1;
  const t = start + 6;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = b[t] === 0x49 && b[t + 1] === 0x49;
  if (!le && !(b[t] === 0x4d && b[t + 1] === 0x4d)) return 1;
  const ifd = t + dv.getUint32(t + 4, le);
  if (ifd + 2 > end) return 1;
  const n = dv.getUint16(ifd, le);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return 1;
    if (dv.getUint16(e, le) === 0x0112) {
      const v = dv.getUint16(e + 8, le);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

function jpegHeader(b: Uint8Array, file: string): { width: number; height: number; orientation: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let orientation = 1;
  let p = 2;
  while (p + 4 <= b.byteLength) {
    if (b[p] !== 0xff) throw new VptError(file, `corrupt JPEG: no marker at byte ${p}`);
    const m = b[p + 1];
    if (m === 0xff) { p++; continue; } // fill bytes
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { p += 2; continue; } // markers without a length
    const len = dv.getUint16(p + 2);
    if (len < 2) throw new VptError(file, `corrupt JPEG: segment length ${len} at byte ${p}`);
    const body = p + 4, end = Math.min(p + 2 + len, b.byteLength);
    if (m === 0xe1 && orientation === 1) orientation = exifOrientation(b, body, end);
    // Start of frame (SOF0-15 but not DHT C4, JPG C8, DAC CC): precision, height, width.
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (body + 5 > b.byteLength) break;
      return { height: dv.getUint16(body + 1), width: dv.getUint16(body + 3), orientation };
    }
    if (m === 0xda || m === 0xd9) break; // scan data or end before any frame header
    p += 2 + len;
  }
  throw new VptError(file, 'corrupt or truncated JPEG: no frame header (the file ends or the image data starts before it)');
}

function webpSize(b: Uint8Array, file: string): [number, number] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const kind = String.fromCharCode(b[12], b[13], b[14], b[15]);
  if (kind === 'VP8X' && b.byteLength >= 30) return [1 + (b[24] | (b[25] << 8) | (b[26] << 16)), 1 + (b[27] | (b[28] << 8) | (b[29] << 16))];
  if (kind === 'VP8L' && b.byteLength >= 25) {
    const v = dv.getUint32(21, true);
    return [1 + (v & 0x3fff), 1 + ((v >> 14) & 0x3fff)];
  }
  if (kind === 'VP8 ' && b.byteLength >= 30) return [dv.getUint16(26, true) & 0x3fff, dv.getUint16(28, true) & 0x3fff];
  throw new VptError(file, 'corrupt or truncated WebP header');
}

/**
 * Format, size and orientation of an image held in `bytes`, or a VptError
 * naming `file` that says what is wrong: empty, not an image (and what it
 * seems to be), truncated header, zero or absurd size.
 */
export function sniffImage(bytes: Uint8Array, file: string): ImageHeader {
  if (bytes.byteLength === 0) throw new VptError(file, 'empty file (0 bytes)');
  const format = formatOf(bytes);
  if (!format) throw new VptError(file, `not an image: the content is not PNG, JPEG, GIF, BMP or WebP${whatElse(bytes)}, whatever its name says`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width: number, height: number, orientation = 1;
  switch (format) {
    case 'png':
      if (bytes.byteLength < 24 || bytes[4] !== 0x0d || bytes[5] !== 0x0a || String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) !== 'IHDR') throw new VptError(file, 'corrupt or truncated PNG: no IHDR header');
      width = dv.getUint32(16); height = dv.getUint32(20);
      break;
    case 'jpeg': ({ width, height, orientation } = jpegHeader(bytes, file)); break;
    case 'gif':
      if (bytes.byteLength < 10) throw new VptError(file, 'corrupt or truncated GIF header');
      width = dv.getUint16(6, true); height = dv.getUint16(8, true);
      break;
    case 'bmp':
      width = Math.abs(dv.getInt32(18, true)); height = Math.abs(dv.getInt32(22, true));
      break;
    default: [width, height] = webpSize(bytes, file);
  }
  if (width === 0 || height === 0) throw new VptError(file, `${TITLE[format]} says the image is ${width} x ${height} pixels`);
  if (width * height > MAX_PIXELS) throw new VptError(file, `image is ${width} x ${height} pixels (${(width * height / 1e6).toFixed(0)} megapixels), over the ${MAX_PIXELS / 1e6} megapixel limit: shrink it first`);
  return { format, width, height, orientation };
}

export function formatTitle(f: ImageFormat): string { return TITLE[f]; }
