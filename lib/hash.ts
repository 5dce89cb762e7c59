import { createHash } from 'node:crypto';

/** SHA-256 of a secret, the only form in which keys and tokens are stored or sent. */
export function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
