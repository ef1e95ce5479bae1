import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { z } from 'zod';

/** The Debian packages the tests run for real: one list, which `npm test` (pretest) installs. */
export const SYSTEM_PACKAGES_FILE = join(import.meta.dirname, '..', '..', 'scripts', 'system-packages.json');

const systemPackage = z
  .object({
    package: z.string(),
    /** Executables the tests or the program start. */
    commands: z.array(z.string()).default([]),
    /** Files loaded from a multiarch library directory (`/usr/lib/<triplet>/`). */
    libraries: z.array(z.string()).default([]),
    /** Needed by node-gyp to build native modules that have no prebuilt binary. */
    nativeBuild: z.boolean().default(false),
    for: z.string(),
  })
  .strict();
export type SystemPackage = z.infer<typeof systemPackage>;

export const SYSTEM_PACKAGES: SystemPackage[] = z
  .object({ packages: z.array(systemPackage) })
  .parse(JSON.parse(readFileSync(SYSTEM_PACKAGES_FILE, 'utf8'))).packages;

/** The listed package that provides a command or library. */
export function packageOf(tool: string): SystemPackage | undefined {
  return SYSTEM_PACKAGES.find((p) => p.commands.includes(tool) || p.libraries.includes(tool));
}

const isExecutable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** The sbin directories too: a user's PATH often lacks them, and `ip`, `nft`, `mosquitto` live there. */
function commandDirs(): string[] {
  const path = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...new Set([...path, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])];
}

function libraryDirs(): string[] {
  const dirs: string[] = [];
  for (const lib of ['/usr/lib', '/lib']) {
    if (!existsSync(lib)) continue;
    dirs.push(
      lib,
      ...readdirSync(lib)
        .filter((d) => d.includes('-linux-'))
        .map((d) => join(lib, d)),
    );
  }
  return dirs;
}

/** Where a command (on PATH or in an sbin directory) or a library (`faketime/libfaketime.so.1`) is, if anywhere. */
export function findTool(tool: string): string | undefined {
  if (tool.includes('/'))
    return libraryDirs()
      .map((d) => join(d, tool))
      .find((f) => existsSync(f));
  return commandDirs()
    .map((d) => join(d, tool))
    .find(isExecutable);
}

/**
 * The path of a tool the test needs; throws, naming the tool and its Debian package, where it is
 * missing. Call it in `beforeAll`, so the suite fails instead of being skipped.
 */
export function requireTool(tool: string): string {
  const pkg = packageOf(tool);
  if (!pkg) throw new Error(`${tool} is not in scripts/system-packages.json: add the Debian package that provides it`);
  const path = findTool(tool);
  if (path) return path;
  throw new Error(
    `${tool} is not installed: it comes with the Debian package ${pkg.package} (${pkg.for}). ` +
      `npm test installs it when run as root; otherwise: sudo apt-get install --no-install-recommends ${pkg.package}`,
  );
}
