import type { Logger } from './log.js';

/**
 * Runs `stop` on the first SIGINT or SIGTERM and resolves when it is done. A second signal while
 * stopping forces the process out with code 1 (an operator who presses Ctrl-C twice means it).
 */
export function untilSignal(stop: () => Promise<void>, log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn({ signal }, 'second signal: exiting without finishing shutdown');
        process.exit(1);
      }
      signalled = true;
      log.info({ signal }, 'shutting down');
      stop().then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(signal);
        },
        (err) => {
          log.error({ err: (err as Error).message }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
