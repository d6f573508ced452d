/**
 * Writing to a server stream with backpressure. grpc-js buffers whatever a handler writes; a handler that
 * ignores `write()` returning false lets a slow (or hostile) reader make the server hold its answers without
 * bound. `writeInTurn` resolves when the stream can take the next message.
 */
import { GatewayError } from '../core/errors.js';

export interface WritableCall<Res> {
  readonly destroyed: boolean;
  write(res: Res): boolean;
  once(event: 'drain' | 'close', l: () => void): unknown;
  removeListener(event: 'drain' | 'close', l: () => void): unknown;
}

/**
 * Writes one message and resolves when the stream can take the next one. A stream that the client cancelled
 * is destroyed by grpc-js and never drains: then this rejects (CANCELLED) instead of waiting for ever, so the
 * handler ends and its in-flight slot is released.
 */
export function writeInTurn<Res>(call: WritableCall<Res>, res: Res): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const gone = () => new GatewayError('CANCELLED', 'the call was cancelled');
    if (call.destroyed) return reject(gone());
    if (call.write(res)) return resolve();
    const onDrain = () => {
      call.removeListener('close', onClose);
      resolve();
    };
    const onClose = () => {
      call.removeListener('drain', onDrain);
      reject(gone());
    };
    call.once('drain', onDrain);
    call.once('close', onClose);
  });
}

/** Ends a server stream with an error status: grpc-js turns an 'error' event on a server stream into the status. */
export function failStream(call: { emit(event: 'error', e: Error): unknown }, se: { code: number; details: string }): void {
  call.emit('error', Object.assign(new Error(se.details), se));
}
