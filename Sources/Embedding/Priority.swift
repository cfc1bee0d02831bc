/// Which queue a request's work waits in: `batch` work (backfills) runs only when no `online` work is queued.
public enum Priority: String, Sendable, CaseIterable {
    case online, batch
}
