/**
 * The process's open-files limit (RLIMIT_NOFILE), raised from its soft value to its hard one: a
 * flash crowd is many people, each with a connection, and every connection is a file. Linux
 * only (libc's getrlimit/setrlimit through bun:ffi); elsewhere it reports nothing.
 */
import { dlopen, FFIType, ptr } from 'bun:ffi';

const RLIMIT_NOFILE = 7;

export interface OpenFiles {
  /** The soft limit now in force. */
  readonly limit: number;
  /** The soft limit before, when it was raised. */
  readonly raisedFrom?: number;
}

/** Raises the soft limit to the hard one; undefined where libc cannot be reached. */
export function raiseOpenFiles(): OpenFiles | undefined {
  let libc: ReturnType<typeof open> | undefined;
  try {
    libc = open();
  } catch {
    return undefined;
  }
  try {
    const limits = new BigUint64Array(2);
    if (libc.symbols.getrlimit(RLIMIT_NOFILE, ptr(limits)) !== 0) return undefined;
    const [soft, hard] = [limits[0]!, limits[1]!];
    if (soft >= hard) return { limit: Number(soft) };
    limits[0] = hard;
    if (libc.symbols.setrlimit(RLIMIT_NOFILE, ptr(limits)) !== 0) return { limit: Number(soft) };
    return { limit: Number(hard), raisedFrom: Number(soft) };
  } finally {
    libc.close();
  }
}

function open() {
  return dlopen('libc.so.6', {
    getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  });
}
