/**
 * Tells systemd how the node is, when it runs as a `Type=notify` service (deploy/systemd):
 * `READY=1` once it sells, `STOPPING=1` when a stop begins, `STATUS=` in words. Sent by the
 * supervisor's own process through libsystemd's sd_notify (Bun has no Unix datagram sockets; a
 * `systemd-notify` child would need NotifyAccess=all and races its own exit). Outside systemd (no
 * NOTIFY_SOCKET) it does nothing.
 */
import { dlopen, FFIType } from 'bun:ffi';
import { log } from '../log.ts';

type Notify = (assignments: string) => number;
let notify: Notify | undefined;

function loadNotify(): Notify {
  const lib = dlopen('libsystemd.so.0', { sd_notify: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } });
  return (text) => lib.symbols.sd_notify(0, Buffer.from(`${text}\0`));
}

/** Sends `assignments` (e.g. `READY=1`) to systemd; says once in a warning line why it could not. */
export function notifySystemd(env: Record<string, string | undefined>, ...assignments: string[]): void {
  if (!env.NOTIFY_SOCKET) return;
  try {
    notify ??= loadNotify();
    const sent = notify(assignments.join('\n'));
    if (sent < 0) throw new Error(`sd_notify failed (errno ${-sent})`);
  } catch (error) {
    log.warn(`cannot tell systemd ${assignments.join(' ')}: ${error instanceof Error ? error.message : error}`);
  }
}
