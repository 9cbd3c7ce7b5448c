import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** What a local weights file hashes to, and the ETags S3 gives its copy when uploaded whole or in parts. */
export interface FileDigests {
  sha256: string;
  size: number;
  /** Single PUT: the MD5 of the bytes. */
  etag: string;
  /** Multipart upload with `partSize` parts: MD5 of the parts' MD5s, then `-<parts>`. */
  multipartEtag: string;
}

/** One pass over the file for all of them, so a large file is read once per push. */
export async function fileDigests(file: string, partSize: number): Promise<FileDigests> {
  const sha = createHash('sha256');
  const whole = createHash('md5');
  const partMd5s: Buffer[] = [];
  let part: Hash = createHash('md5');
  let inPart = 0;
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    sha.update(chunk);
    whole.update(chunk);
    size += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(chunk.length - at, partSize - inPart);
      part.update(chunk.subarray(at, at + take));
      inPart += take;
      at += take;
      if (inPart === partSize) { partMd5s.push(part.digest()); part = createHash('md5'); inPart = 0; }
    }
  }
  if (inPart > 0 || partMd5s.length === 0) partMd5s.push(part.digest());
  const multipart = createHash('md5').update(Buffer.concat(partMd5s)).digest('hex');
  return { sha256: sha.digest('hex'), size, etag: whole.digest('hex'), multipartEtag: `${multipart}-${partMd5s.length}` };
}

/** An ETag as S3 sends it ("…", sometimes W/"…"), bare and lower-case. */
export function bareEtag(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
}
