import Embedding
import HTTP

/// `/match`'s response body. Each block of candidates is written where its features were computed, in parallel
/// (`write`), and the blocks' elements are joined in order (`join`). A block also writes the missing candidates that
/// come before its first row (the last block, those after its last row too).
struct MatchResponseWriter: Sendable {
    let prepared: Matcher.Prepared
    /// Every candidate's id, in request order.
    let ids: [String]
    let model: ModelIdentity
    /// For `sim_top`, each history row's `"index":…,"id":…` members, written once: a row is named by many
    /// candidates. Row r's bytes end at `historyFragmentEnds[r]`, and start one byte (a comma) after row r - 1's.
    let historyFragments: [UInt8]
    let historyFragmentEnds: [Int]

    init(prepared: Matcher.Prepared, ids: [String], model: ModelIdentity) {
        (self.prepared, self.ids, self.model) = (prepared, ids, model)
        guard prepared.query.features.contains(.simTop) else {
            (historyFragments, historyFragmentEnds) = ([], [])
            return
        }
        var json = JSONWriter(capacity: prepared.historyRows.count * 40)
        var ends: [Int] = []
        ends.reserveCapacity(prepared.historyRows.count)
        for index in prepared.historyRows {
            json.key("index")
            json.int(index)
            json.key("id")
            if let id = prepared.historyIDs[index] { json.string(id) } else { json.null() }
            ends.append(json.byteCount)  // the next row's members start after a comma
        }
        (historyFragments, historyFragmentEnds) = (json.finish(), ends)
    }

    /// One block's candidates as JSON array elements.
    func write(_ block: MatchFeatures.Block) -> [UInt8] {
        let features = prepared.query.features
        let (wantUser, wantMax, wantMean, wantSim, wantSid, wantCode) = (
            features.contains(.userCos), features.contains(.maxCos), features.contains(.topkMeanCos),
            features.contains(.simTop), features.contains(.sidMatch), features.contains(.sid))
        let (historyRows, candidateRows) = (prepared.historyRows, prepared.candidateRows)
        var json = JSONWriter(capacity: (block.rows.count + 1) * (96 + (wantSim ? prepared.query.simTop * 48 : 0)))
        var position = block.rows.lowerBound == 0 ? 0 : candidateRows[block.rows.lowerBound - 1] + 1
        for row in block.rows {
            while position < candidateRows[row] {
                Self.writeMissing(ids[position], into: &json)
                position += 1
            }
            let r = row - block.rows.lowerBound
            json.beginObject()
            json.key("id")
            json.string(ids[position])
            position += 1
            // With no history, the cosines are null.
            if wantUser {
                json.key("user_cos")
                if block.userCos.isEmpty || historyRows.isEmpty { json.null() } else { json.float(block.userCos[r]) }
            }
            if wantMax {
                json.key("max_cos")
                if block.maxCos.isEmpty { json.null() } else { json.float(block.maxCos[r]) }
            }
            if wantMean {
                json.key("topk_mean_cos")
                if block.topkMeanCos.isEmpty { json.null() } else { json.float(block.topkMeanCos[r]) }
            }
            if wantSim {
                json.key("sim_top")
                json.beginArray()
                historyFragments.withUnsafeBufferPointer { fragments in
                    for j in r * block.simTopCount..<(r + 1) * block.simTopCount {
                        let row = Int(block.simTopIndex[j])
                        let start = row == 0 ? 0 : historyFragmentEnds[row - 1] + 1
                        json.beginObject()
                        json.members(UnsafeBufferPointer(rebasing: fragments[start..<historyFragmentEnds[row]]))
                        json.key("score")
                        json.float(block.simTopScore[j])
                        json.endObject()
                    }
                }
                json.endArray()
            }
            if wantSid {
                json.key("sid_match")
                json.beginArray()
                for count in block.sidMatch[r * block.levels..<(r + 1) * block.levels] { json.int(count) }
                json.endArray()
            }
            if wantCode {
                json.key("semantic_id")
                json.beginArray()
                for code in prepared.query.candidateCodes[row] { json.int(code) }
                json.endArray()
            }
            json.endObject()
        }
        if block.rows.upperBound == candidateRows.count {
            for missing in position..<ids.count { Self.writeMissing(ids[missing], into: &json) }
        }
        return json.finish()
    }

    /// The whole body from the blocks `write` made.
    func join(_ blocks: [[UInt8]], size: Int, codebook: SemanticCodebook?) -> JSONWriter {
        var json = JSONWriter(capacity: 256 + blocks.reduce(0) { $0 + $1.count })
        json.beginObject()
        json.key("data")
        json.beginArray()
        if prepared.candidateRows.isEmpty {
            for id in ids { Self.writeMissing(id, into: &json) }
        }
        for block in blocks { json.appendElements(block) }
        json.endArray()
        Self.writeTail(&json, missing: prepared.missing, historyUsed: prepared.historyRows.count, size: size,
                       codebook: codebook, model: model)
        json.endObject()
        return json
    }

    static func writeMissing(_ id: String, into json: inout JSONWriter) {
        json.beginObject()
        json.key("id")
        json.string(id)
        json.key("missing")
        json.bool(true)
        json.endObject()
    }

    /// The fields `/match` and `/user_embedding` end with: missing ids (once each), history used, size, model,
    /// codebook.
    static func writeTail(_ json: inout JSONWriter, missing: [String], historyUsed: Int, size: Int,
                          codebook: SemanticCodebook?, model: ModelIdentity) {
        json.key("missing")
        json.beginArray()
        var seen = Set<String>()
        for id in missing where seen.insert(id).inserted { json.string(id) }
        json.endArray()
        json.key("history_used")
        json.int(historyUsed)
        json.key("dimensions")
        json.int(size)
        json.key("model")
        json.beginObject()
        json.key("id")
        json.string(model.id)
        json.key("revision")
        json.string(model.revision)
        json.endObject()
        json.key("codebook_version")
        if let codebook { json.string(codebook.version) } else { json.null() }
    }
}
