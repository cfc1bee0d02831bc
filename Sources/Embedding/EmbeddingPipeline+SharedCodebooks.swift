import Logging

extension EmbeddingPipeline {
    /// With a shared bank, codebooks come from it: the newest `codebooks.keep` versions now, and each newer one as
    /// it is saved (by `omniembed fit` or any replica), announced by NOTIFY or found by the store's monitor within
    /// a second. A version fitted for another model is not served and the log says why.
    func followSharedCodebooks() {
        guard let store else { return }
        do throws(EmbeddingError) {
            // Oldest first, so that the newest ends up in front.
            for stored in try store.codebooks(newest: codebooks.keep).reversed() { load(stored) }
        } catch {
            logger.warning("codebooks not read from the bank yet", metadata: ["error": "\(error.message)"])
        }
        store.watchCodebooks { [weak self] version in
            guard let self, !codebooks.versions.contains(version) else { return }
            do throws(EmbeddingError) {
                guard let stored = try store.codebook(version: version) else { return }
                load(stored)
            } catch {
                logger.error("codebook not read from the bank", metadata: ["version": "\(version)", "error": "\(error.message)"])
            }
        }
    }

    private func load(_ stored: StoredCodebook) {
        do {
            let codebook = try SemanticCodebook(bytes: stored.bytes, path: "the bank's codebook \(stored.version)")
            let previous = codebooks.current?.version
            try install(codebook)
            logger.info("codebook loaded", metadata: ["version": "\(codebook.version)", "previous": "\(previous ?? "none")",
                                                      "from": "bank", "loaded": "\(codebooks.versions.joined(separator: ","))"])
        } catch {
            logger.error("codebook from the bank not served", metadata: ["version": "\(stored.version)", "error": "\(error)"])
        }
    }
}
