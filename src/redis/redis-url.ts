/**
 * LINKGW_REDIS_URL forms:
 *   redis://[user:pass@]host:port[/db]              one node (ioredis parses it; `rediss://` for TLS)
 *   redis+cluster://[user:pass@]h1:p1,h2:p2[,…]     Redis Cluster, the listed nodes as seeds
 *   rediss+cluster://…                              Redis Cluster over TLS
 * A cluster has no database number; a path after the node list is refused.
 */

export interface ClusterUrl {
  cluster: true;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/** Parses a cluster URL; returns null for a single-node URL (left to ioredis). Throws on a malformed one. */
export function parseRedisUrl(url: string): ClusterUrl | null {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?(?:[?#].*)?$/.exec(url);
  if (!m) {
    if (/^rediss?\+cluster:/.test(url)) throw new Error('LINKGW_REDIS_URL: malformed cluster URL');
    if (!/^rediss?:\/\//.test(url)) throw new Error('LINKGW_REDIS_URL: redis://, rediss://, redis+cluster:// or rediss+cluster://');
    return null;
  }
  const [, scheme, userinfo, hostlist, path] = m;
  if (path && path !== '/') throw new Error('LINKGW_REDIS_URL: a cluster URL has no database number');
  const nodes = hostlist!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    const host = i > 0 ? hp.slice(0, i).replace(/^\[|\]$/g, '') : hp;
    const port = i > 0 ? Number(hp.slice(i + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('LINKGW_REDIS_URL: bad cluster node');
    return { host, port };
  });
  const out: ClusterUrl = { cluster: true, nodes, tls: scheme === 'rediss' };
  if (userinfo) {
    const j = userinfo.indexOf(':');
    const user = decodeURIComponent(j < 0 ? userinfo : userinfo.slice(0, j));
    if (user) out.username = user;
    if (j >= 0) out.password = decodeURIComponent(userinfo.slice(j + 1));
  }
  return out;
}

/** The URL with any password masked, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}
