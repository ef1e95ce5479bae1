import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { tempDir } from './net.js';
import { requireTool } from './system-tools.js';

/**
 * Debian's headless chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
 * JSON messages ending in NUL on file descriptors 3 and 4), so that a test runs a page in a real
 * browser without a driver library. Fails, naming the package, where chromium is missing.
 */
export interface BrowserPage {
  /** Opens `url` and waits for its load event. */
  goto(url: string): Promise<void>;
  /** Evaluates an expression in the page (awaiting a promise) and returns its value as JSON. */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the whole page, `width` CSS pixels wide. */
  screenshot(width: number): Promise<Buffer>;
  /** Lets `click` download into `dir`; resolves with the file name once a download completes. */
  downloadInto(dir: string, click: string): Promise<string>;
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface Browser {
  newPage(options?: { timezoneId?: string; locale?: string; width?: number; height?: number }): Promise<BrowserPage>;
  close(): Promise<void>;
}

interface CdpMessage {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export async function launchChromium(): Promise<Browser> {
  const chromium = requireTool('chromium');
  const profile = tempDir('p2p-chromium-');
  const child: ChildProcess = spawn(
    chromium,
    [
      '--headless',
      '--remote-debugging-pipe',
      // The tests run as root, where chromium's sandbox cannot start.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--hide-scrollbars',
      '--font-render-hinting=none',
      `--user-data-dir=${profile.dir}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  const toBrowser = child.stdio[3] as Writable;
  const fromBrowser = child.stdio[4] as Readable;
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let nextId = 1;
  const pending = new Map<number, { resolve(r: Record<string, unknown>): void; reject(e: Error): void }>();
  const listeners = new Set<(m: CdpMessage) => void>();
  let buffered = '';
  fromBrowser.setEncoding('utf8');
  fromBrowser.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
      const message = JSON.parse(buffered.slice(0, end)) as CdpMessage;
      buffered = buffered.slice(end + 1);
      if (message.id !== undefined) {
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(`chromium: ${message.error.message}`));
        else waiter?.resolve(message.result ?? {});
      } else for (const listener of listeners) listener(message);
    }
  });
  child.once('exit', (code) => {
    for (const w of pending.values()) w.reject(new Error(`chromium exited (${code}): ${stderr}`));
    pending.clear();
  });

  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  const nextEvent = (method: string, sessionId: string | undefined, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`chromium: no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (m: CdpMessage) => {
        if (m.method !== method || (sessionId !== undefined && m.sessionId !== sessionId)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(m.params ?? {});
      };
      listeners.add(listener);
    });

  await send('Browser.getVersion');

  return {
    async newPage(options = {}) {
      const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as {
        sessionId: string;
      };
      const inPage = (method: string, params: Record<string, unknown> = {}) => send(method, params, sessionId);
      await inPage('Page.enable');
      await inPage('Runtime.enable');
      if (options.timezoneId) await inPage('Emulation.setTimezoneOverride', { timezoneId: options.timezoneId });
      if (options.locale) await inPage('Emulation.setLocaleOverride', { locale: options.locale });
      const width = options.width ?? 1100;
      await inPage('Emulation.setDeviceMetricsOverride', {
        width,
        height: options.height ?? 800,
        deviceScaleFactor: 1,
        mobile: false,
      });
      const page: BrowserPage = {
        send: inPage,
        async goto(url) {
          const loaded = nextEvent('Page.loadEventFired', sessionId);
          const r = (await inPage('Page.navigate', { url })) as { errorText?: string };
          if (r.errorText) throw new Error(`chromium could not open ${url}: ${r.errorText}`);
          await loaded;
        },
        async evaluate<T>(expression: string) {
          const r = (await inPage('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
            result: { value?: T };
            exceptionDetails?: { text: string; exception?: { description?: string } };
          };
          if (r.exceptionDetails)
            throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
          return r.result.value as T;
        },
        async screenshot(shotWidth) {
          const metrics = (await inPage('Page.getLayoutMetrics')) as { cssContentSize: { height: number } };
          const height = Math.ceil(metrics.cssContentSize.height);
          await inPage('Emulation.setDeviceMetricsOverride', {
            width: shotWidth,
            height,
            deviceScaleFactor: 1,
            mobile: false,
          });
          const { data } = (await inPage('Page.captureScreenshot', { format: 'png' })) as { data: string };
          return Buffer.from(data, 'base64');
        },
        async downloadInto(dir, click) {
          await send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir, eventsEnabled: true });
          // Listening before the click: a small file can complete within the message that began it.
          const done = new Promise<string>((resolve, reject) => {
            let name = '';
            let guid = '';
            const timer = setTimeout(() => {
              listeners.delete(listener);
              reject(new Error(`chromium: no download completed within 15000 ms`));
            }, 15_000);
            const listener = (m: CdpMessage) => {
              const p = (m.params ?? {}) as { guid?: string; state?: string; suggestedFilename?: string };
              if (m.method === 'Browser.downloadWillBegin') {
                guid = p.guid ?? '';
                name = p.suggestedFilename ?? '';
              }
              if (m.method !== 'Browser.downloadProgress' || p.guid !== guid) return;
              if (p.state !== 'completed' && p.state !== 'canceled') return;
              clearTimeout(timer);
              listeners.delete(listener);
              if (p.state === 'completed') resolve(name);
              else reject(new Error(`chromium: the download of ${name} was cancelled`));
            };
            listeners.add(listener);
          });
          await page.evaluate(`document.querySelector(${JSON.stringify(click)}).click()`);
          return done;
        },
      };
      return page;
    },
    async close() {
      const gone = new Promise<void>((resolve) => setTimeout(resolve, 5000));
      await Promise.race([send('Browser.close').catch(() => undefined), exited]);
      await Promise.race([exited, gone]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      // Its helper processes may still be closing files in the profile for a moment.
      rmSync(profile.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
