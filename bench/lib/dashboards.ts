/**
 * Many dashboards at once: `count` connections ask for the dashboard's event stream with the
 * admin token, as many browser tabs would (2 000 once cost Redis 32 000 commands a second and
 * tripled buyers' p50). Raw sockets, so the client costs little; each stays open until `close`.
 */
import type { Socket } from 'bun';

export interface Streams {
  /** Answered 200 (a stream kept open). */
  readonly open: number;
  /** Answered 429 (past SPIKE_DASHBOARD_STREAMS). */
  readonly refused: number;
  readonly other: number;
  close(): void;
}

export async function openStreams(adminUrl: string, token: string, count: number): Promise<Streams> {
  const { hostname, port } = new URL(adminUrl);
  const sockets: Socket<{ status?: number }>[] = [];
  const request = `GET /dashboard/events HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`;
  const answered: Promise<number>[] = [];
  for (let i = 0; i < count; i++) {
    answered.push(
      new Promise<number>((resolve) => {
        void Bun.connect<{ status?: number }>({
          hostname,
          port: Number(port),
          socket: {
            open(socket) {
              socket.data = {};
              sockets.push(socket);
              socket.write(request);
            },
            data(socket, chunk) {
              if (socket.data.status !== undefined) return;
              socket.data.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString())?.[1] ?? 0);
              resolve(socket.data.status);
            },
            close: () => resolve(0),
            error: () => resolve(0),
          },
        }).catch(() => resolve(0));
      }),
    );
  }
  const statuses = await Promise.all(answered);
  return {
    open: statuses.filter((s) => s === 200).length,
    refused: statuses.filter((s) => s === 429).length,
    other: statuses.filter((s) => s !== 200 && s !== 429).length,
    close: () => {
      for (const socket of sockets) socket.end();
    },
  };
}
