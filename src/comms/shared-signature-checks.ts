/**
 * Signatures already verified in this process, for a process that hosts several gateways (the
 * bench packs a cell's gateways that way): a message to the cell arrives once per hosted gateway of
 * that cell, and each would verify the same signature over the same text with the same key. A
 * signature check is a pure function of those three, so taking a remembered success is the same
 * check done once instead of n times: what each gateway accepts or refuses does not change. A gateway
 * alone on its device has nothing to share and keeps this off.
 */
export class SharedSignatureChecks {
  /** By signature: the key and the signed text it was verified with. */
  private readonly verified = new Map<string, string>();

  constructor(private readonly maxEntries = 8192) {}

  /** True when this exact signature was verified over this exact text with this exact key. */
  has(signature: string, publicKey: string, signedText: string): boolean {
    return this.verified.get(signature) === `${publicKey}\n${signedText}`;
  }

  remember(signature: string, publicKey: string, signedText: string): void {
    if (this.verified.size >= this.maxEntries) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(signature, `${publicKey}\n${signedText}`);
  }
}

let shared: SharedSignatureChecks | undefined;

/** Turns the sharing on for this process (a process hosting several gateways). */
export function shareSignatureChecks(): void {
  shared ??= new SharedSignatureChecks();
}

/** The process's shared checks, when on. */
export function sharedSignatureChecks(): SharedSignatureChecks | undefined {
  return shared;
}
