// Load airlock's status page in Debian's chromium (playwright-core, no
// browser download) at 1366x768, as an operator's laptop shows it: report
// where the four summary cards sit, the human-unit spans, the order of the
// recent requests and every request the page made; keep a screenshot.
//   node status_page.js URL SCREENSHOT.png
const { chromium } = require('playwright-core');

(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url);
    await page.waitForTimeout(300);
    const out = await page.evaluate(() => {
      const box = (id) => {
        const e = document.getElementById(id);
        if (!e) return null;
        const r = e.getBoundingClientRect();
        return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
      };
      const span = (id) => {
        const e = document.getElementById(id);
        return e ? { text: e.textContent, title: e.title } : null;
      };
      const icon = document.querySelector('link[rel=icon]');
      return {
        boxes: { uplinks: box('uplinks'), cache: box('cache'), hitratio: box('hitratio'), mirrored: box('mirrored') },
        cacheBytes: span('cache-bytes'),
        cacheMax: span('cache-max'),
        hitRatio: span('hit-ratio-5m'),
        uptime: span('uptime'),
        packages: span('packages'),
        manifestVersions: [...document.querySelectorAll('.manifest-version')].map((e) => e.textContent),
        versions: [...document.querySelectorAll('.version')].map((e) => e.textContent),
        upstreams: [...document.querySelectorAll('tr.upstream')].map((tr) => ({
          cls: tr.className, name: tr.querySelector('.name').textContent, cells: [...tr.cells].map((c) => c.textContent),
          titles: [...tr.cells].map((c) => c.title) })),
        recent: [...document.querySelectorAll('#recent tr[data-t]')].map((tr) => Number(tr.dataset.t)),
        icon: icon ? icon.href.slice(0, 20) : null,
        scrollHeight: document.documentElement.scrollHeight,
      };
    });
    await page.screenshot({ path: shot });
    out.requests = requests;
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
