import net from 'node:net';

/** The loopback address every bench process listens on and connects to: no traffic leaves the host. */
export const HOST = '127.0.0.1';

/**
 * A port that was free a moment ago. The CLI needs a known port (with `--port 0` the URL would
 * be unknown), so we pick one ourselves; the small race with other programs is acceptable here.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
