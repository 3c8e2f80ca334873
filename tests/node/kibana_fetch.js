// Fetch URLs the way Kibana's Fleet registry client does: node-fetch with an
// https-proxy-agent built like x-pack/plugins/fleet/server/services/epm/registry/proxy.ts
// (options object: host, port, protocol, auth from the proxy URL, Host header of the
// target), User-Agent "Kibana/<version> node-fetch", no conditional headers, no timeout.
// Usage: node kibana_fetch.js PROXY_URL URL...   (prints one JSON line per URL)
// PROXY_URL "-": no proxy (xpack.fleet.registryUrl pointing at airlock).  node-fetch
// follows redirects as Kibana's does; finalUrl says where it ended.
const crypto = require('crypto');
const fetch = require('node-fetch');
const { HttpsProxyAgent } = require('https-proxy-agent');
const { HttpProxyAgent } = require('http-proxy-agent');

function getProxyAgent(proxyUrl, targetUrl) {
  const isHttps = targetUrl.startsWith('https:');
  if (!isHttps) return new HttpProxyAgent(proxyUrl);
  const endpointParsed = new URL(targetUrl);
  const proxyParsed = new URL(proxyUrl);
  const authValue = proxyParsed.username ? `${proxyParsed.username}:${proxyParsed.password}` : undefined;
  return new HttpsProxyAgent({
    host: proxyParsed.hostname,
    port: Number(proxyParsed.port),
    protocol: proxyParsed.protocol,
    auth: authValue,
    headers: { Host: endpointParsed.host },
    rejectUnauthorized: undefined,
  });
}

async function main() {
  const [proxyUrl, ...urls] = process.argv.slice(2);
  for (const url of urls) {
    const res = await fetch(url, {
      agent: proxyUrl === '-' ? undefined : getProxyAgent(proxyUrl, url),
      headers: { 'User-Agent': 'Kibana/8.13.4 node-fetch' },
    });
    const buf = await res.buffer();
    const body = buf.toString('utf8');
    console.log(JSON.stringify({
      url, finalUrl: res.url, status: res.status, etag: res.headers.get('etag'),
      sha256: crypto.createHash('sha256').update(buf).digest('hex'), len: buf.length,
      cacheControl: res.headers.raw()['cache-control'] || [],
      cacheStatus: res.headers.get('cache-status'), body,
    }));
  }
}
main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
