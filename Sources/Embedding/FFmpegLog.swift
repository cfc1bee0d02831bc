import Locking
import Logging
internal import Media

/// Where FFmpeg's warnings and errors go: the pipeline's logger at debug level (they describe a client's file, not
/// the service), never stderr. Until a pipeline loads they are dropped.
enum FFmpegLog {
    private static let logger = Locked<Logger?>(nil)

    static func route(to logger: Logger) {
        Self.logger.withLock { $0 = logger }
        VideoDecoder.routeLog { _, line in
            guard let line, let logger = FFmpegLog.logger.withLock({ $0 }) else { return }
            logger.debug("ffmpeg: \(String(cString: line))")
        }
    }
}
