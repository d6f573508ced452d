// Preloaded into a child process (node --import): samples its memory and, at exit, writes the peaks to the file
// named by PEAK_MEMORY_FILE, so a test can check that a command runs in bounded memory. Run with --expose-gc,
// it collects garbage before each sample (every 50 ms), so `liveHeap` is the peak of what the process holds,
// not of how lazily the collector ran.
import { writeFileSync } from 'node:fs';

const file = process.env.PEAK_MEMORY_FILE;
if (file) {
  let heapUsed = 0;
  let liveHeap = 0;
  let rss = 0;
  const sample = () => {
    let m = process.memoryUsage();
    heapUsed = Math.max(heapUsed, m.heapUsed);
    if (globalThis.gc) {
      globalThis.gc();
      m = process.memoryUsage();
      liveHeap = Math.max(liveHeap, m.heapUsed);
    }
    rss = Math.max(rss, m.rss);
  };
  setInterval(sample, globalThis.gc ? 50 : 10).unref();
  process.on('exit', () => {
    sample();
    writeFileSync(file, JSON.stringify({ heapUsed, liveHeap, rss, maxRss: process.resourceUsage().maxRSS * 1024 }));
  });
}
