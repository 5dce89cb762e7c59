import net from 'node:net';

export interface TcpSwitch {
  port: number;
  url: string;
  /** Drops every connection and refuses new ones, like a server going away. */
  cut(): void;
  restore(): void;
  /**
   * A network partition: nothing gets through in either direction, yet no side hears of
   * it — connections stay open, new ones are accepted and then hear nothing. What is sent
   * meanwhile waits, as TCP would retransmit it, and arrives after `heal()`.
   */
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

/** A TCP forwarder in front of a real server, to cut it off from its clients and back. */
export async function startTcpSwitch(targetPort: number): Promise<TcpSwitch> {
  const links = new Set<Link>();
  let open = true;
  let partitioned = false;

  function forward(link: Link): void {
    link.upstream ??= connectUpstream(link);
    link.client.pipe(link.upstream).pipe(link.client);
    link.client.resume();
    link.upstream.resume();
  }

  function connectUpstream(link: Link): net.Socket {
    const upstream = net.connect(targetPort, '127.0.0.1');
    upstream.on('close', () => link.client.destroy());
    upstream.on('error', () => link.client.destroy());
    return upstream;
  }

  const server = net.createServer((client) => {
    if (!open) return void client.destroy();
    const link: Link = { client, upstream: undefined };
    links.add(link);
    client.on('close', () => {
      links.delete(link);
      link.upstream?.destroy();
    });
    client.on('error', () => client.destroy());
    if (partitioned) client.pause();
    else forward(link);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = () => {
    for (const link of links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    cut() {
      open = false;
      destroyAll();
    },
    restore() {
      open = true;
    },
    partition() {
      partitioned = true;
      for (const { client, upstream } of links) {
        client.unpipe();
        upstream?.unpipe();
        client.pause();
        upstream?.pause();
      }
    },
    heal() {
      partitioned = false;
      for (const link of links) forward(link);
    },
    close: () =>
      new Promise<void>((resolve) => {
        destroyAll();
        server.close(() => resolve());
      }),
  };
}
