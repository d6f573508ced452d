/**
 * The record writer as the services see it, with each call's wait for its record in the call's trace: a
 * `linkgw.record.commit` span from handing the record over to its batch being durable, and the record id noted
 * for the call's access log line. The writer itself knows nothing of calls or traces.
 */
import type { AccessRecordDraft } from '../core/access-record.js';
import type { RecordAppender, RecordCall } from '../service/ports.js';

export function tracedRecords(inner: RecordAppender): RecordAppender {
  return {
    append(draft: AccessRecordDraft, call?: RecordCall): Promise<void> {
      const wait = call?.trace?.startRecordWait(draft.recordId);
      // Nothing recorded: no promise hop of its own (~0.5 µs a record).
      if (!wait) return inner.append(draft, call);
      return inner.append(draft, call).then(
        () => wait.end(),
        (err: unknown) => {
          wait.end(true);
          throw err;
        },
      );
    },
  };
}
