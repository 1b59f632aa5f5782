// The arithmetic of a reader that was away. A terminal's holder counts every
// byte the program ever wrote (its total) and keeps the last of them (its
// ring): the ring holds bytes [total - ring.length, total). A reader that has
// everything up to byte `from` needs [from, total); what fell out of the ring
// before it came back is lost, and said so.
//
// Text is cut at character boundaries: the bytes of a character the program
// has not finished writing wait for the rest (incompleteUtf8Tail).

export interface CatchUp {
  /** The bytes the reader lacks, as far as the ring still holds them. */
  bytes: Buffer;
  /** Bytes between `from` and the ring's start: gone before the reader came back. */
  lost: number;
}

export function catchUp(from: number, total: number, ring: Buffer): CatchUp {
  const ringStart = total - ring.length;
  if (from >= total) return { bytes: Buffer.alloc(0), lost: 0 };
  if (from < ringStart) return { bytes: ring, lost: ringStart - from };
  return { bytes: ring.subarray(from - ringStart), lost: 0 };
}

/**
 * How many bytes at the end of `bytes` begin a UTF-8 character that is not
 * complete yet (0 to 3). Bytes that can never become a character (a stray
 * continuation byte, an invalid lead byte) are not held back: they are the
 * program's, and decode as U+FFFD.
 */
export function incompleteUtf8Tail(bytes: Buffer): number {
  const end = bytes.length;
  for (let i = end - 1; i >= Math.max(0, end - 3); i--) {
    const b = bytes[i];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: its lead is further back
    const needed = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 1;
    return end - i < needed ? end - i : 0;
  }
  return 0;
}
