/**
 * The observer convention: a module that reports what it does (for metrics) declares its own observer
 * interface and takes an optional `observer`; the composition root passes the metrics object, which
 * implements them all. `notify` is the one way to call an observer: a failing metrics callback must never fail
 * the request that triggered it.
 */
export function notify<O>(observer: O | undefined, report: (o: O) => void): void {
  if (observer === undefined) return;
  try {
    report(observer);
  } catch {
    // An observer's failure is not the caller's failure.
  }
}
