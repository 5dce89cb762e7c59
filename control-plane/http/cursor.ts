import { createHmac, timingSafeEqual } from 'node:crypto';
import { fail } from '../errors.js';

/**
 * Keyset cursors are opaque to clients: the position (the sort values of the last row
 * returned) and the scope it belongs to (list, team, filters), signed so a tampered
 * cursor, or one reused with other filters, is refused instead of silently misread.
 */
export interface CursorCodec {
  encode(scope: string, position: readonly string[]): string;
  /** Returns the position (`arity` values), or throws 400 `cursor_invalid`. */
  decode(scope: string, cursor: string, arity: number): string[];
}

const SIGNATURE_BYTES = 16;

export function createCursorCodec(secret: string): CursorCodec {
  function sign(scope: string, payload: string): Buffer {
    return createHmac('sha256', secret).update(scope).update('\0').update(payload).digest().subarray(0, SIGNATURE_BYTES);
  }
  const invalid = () => fail('cursor_invalid');

  return {
    encode(scope, position) {
      const payload = Buffer.from(JSON.stringify(position)).toString('base64url');
      return `${payload}.${sign(scope, payload).toString('base64url')}`;
    },
    decode(scope, cursor, arity) {
      const [payload, signature, extra] = cursor.split('.');
      if (payload === undefined || signature === undefined || extra !== undefined) throw invalid();
      const expected = sign(scope, payload);
      const given = Buffer.from(signature, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      let position: unknown;
      try {
        position = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        throw invalid();
      }
      if (!Array.isArray(position) || position.length !== arity || !position.every((value) => typeof value === 'string')) throw invalid();
      return position as string[];
    },
  };
}
