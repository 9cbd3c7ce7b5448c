/**
 * image (BYTES scalar: one encoded PNG, JPEG or WebP) -> rgb (UINT8 [h, w, 3]).
 * EXIF orientation is applied and transparency is flattened onto white, so
 * later stages see the picture the way a viewer shows it.
 *
 * options: max_pixels (default 40 000 000) — larger images are rejected with
 * 400 before any pixel is decoded.
 */
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import type { FunctionStageModule } from '@ensemble/core';
import { BadRequestError } from '@ensemble/core';
import { imageToTensor } from '../lib/image.js';
import { numberOption } from '../lib/options.js';
import { takeBytesScalar } from '../lib/tensors.js';

const FORMATS: Record<string, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP' };
const NOT_AN_IMAGE = 'image: not a PNG, JPEG or WebP image';

const stage: FunctionStageModule = {
  async process(item, ctx) {
    const maxPixels = numberOption(ctx, 'max_pixels', 40_000_000, { min: 1, integer: true });
    const bytes = takeBytesScalar(item, 'image');
    if (bytes.length === 0) throw new BadRequestError('image: empty (0 bytes)');
    const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

    // The header alone tells the format and size; checking them first keeps
    // other formats (SVG, TIFF, ...) and decompression bombs away from the decoder.
    // sharp's own pixel limit (about 268 M) would refuse a bigger header as "not an image" before
    // max_pixels could say what is wrong: read the header without it.
    let meta: Metadata;
    try {
      meta = await sharp(input, { limitInputPixels: false }).metadata();
    } catch {
      throw new BadRequestError(NOT_AN_IMAGE);
    }
    const format = meta.format ? FORMATS[meta.format] : undefined;
    if (!format || !meta.width || !meta.height) throw new BadRequestError(NOT_AN_IMAGE);
    if (meta.width * meta.height > maxPixels) {
      throw new BadRequestError(`image: ${meta.width} x ${meta.height} = ${meta.width * meta.height} pixels is over max_pixels ${maxPixels}`);
    }

    let decoded: { data: Buffer; info: OutputInfo };
    try {
      decoded = await sharp(input, { limitInputPixels: maxPixels })
        .rotate()
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new BadRequestError(`image: could not decode the ${format} data (${e instanceof Error ? e.message : String(e)})`);
    }
    const { width, height, channels } = decoded.info;
    if (channels !== 3) throw new Error(`decoder returned ${channels} channels, expected 3`);
    // Own the whole ArrayBuffer: items may be transferred to worker threads.
    const buf = decoded.data;
    const data = buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength
      ? new Uint8Array(buf.buffer, 0, buf.byteLength)
      : new Uint8Array(buf);
    return { rgb: imageToTensor({ width, height, data }) };
  },
};

export default stage;
