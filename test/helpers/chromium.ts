import { existsSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { requireTool } from './system-tools.js';

export type { Browser, Page } from 'puppeteer-core';

/**
 * Debian's chromium (the package `chromium`; nothing is downloaded), headless, driven by
 * puppeteer-core. Fails, naming the package, where chromium is missing.
 */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: requireTool('chromium'),
    headless: true,
    // The tests run as root, where chromium's sandbox cannot start.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--hide-scrollbars',
      '--font-render-hinting=none',
    ],
  });
}

/** A page in the given time zone and locale (`en-GB`, so that dates read the same on any machine). */
export async function openPage(
  browser: Browser,
  options: { timezoneId?: string; locale?: string; width?: number; height?: number } = {},
): Promise<Page> {
  const page = await browser.newPage();
  if (options.timezoneId) await page.emulateTimezone(options.timezoneId);
  // puppeteer has no call for the locale; the override lasts as long as the session that set it.
  if (options.locale)
    await (await page.createCDPSession()).send('Emulation.setLocaleOverride', { locale: options.locale });
  await page.setViewport({ width: options.width ?? 1100, height: options.height ?? 800 });
  return page;
}

/** Clicks `selector` and resolves with the name of the file it downloaded into `dir`, once complete. */
export async function downloadByClick(page: Page, dir: string, selector: string, timeoutMs = 15_000): Promise<string> {
  const session = await page.browser().target().createCDPSession();
  try {
    await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir, eventsEnabled: true });
    let name = '';
    // Listening before the click: a small file can complete within the message that began it.
    const done = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium: no download within ${timeoutMs} ms`)), timeoutMs);
      session.on('Browser.downloadWillBegin', (e) => {
        name = e.suggestedFilename;
      });
      session.on('Browser.downloadProgress', (e) => {
        if (e.state === 'inProgress') return;
        clearTimeout(timer);
        if (e.state === 'completed' && existsSync(join(dir, name))) resolve(name);
        else
          reject(
            new Error(`chromium: the download of ${name} ${e.state === 'canceled' ? 'was cancelled' : 'is missing'}`),
          );
      });
    });
    await page.click(selector);
    return await done;
  } finally {
    await session.detach();
  }
}
