import XCTest
@testable import VMFDemo

/// Benchmarks every bundled engine on the device and writes one vmf-deploy/bench v1 document per
/// engine (bench-<backend>.json), the format vmf-bench reads. Warmup/runs come from the scheme's
/// VMF_WARMUP / VMF_RUNS. The files are attached to the test result (xcresulttool export
/// attachments) and, when VMF_BENCH_OUT names a folder (simulator / Mac), also written there.
final class BenchmarkTests: XCTestCase {
    private var warmup: Int { Int(ProcessInfo.processInfo.environment["VMF_WARMUP"] ?? "") ?? 3 }
    private var runs: Int { Int(ProcessInfo.processInfo.environment["VMF_RUNS"] ?? "") ?? 10 }

    func testBenchmarkEveryBundledEngine() throws {
        let engines = try BundledModels.engines()
        XCTAssertFalse(engines.isEmpty, "no model bundled: copy the vmf-export output into VMFDemo/Models (docs/ios.md)")
        for engine in engines {
            let json = try report(for: engine)
            let document = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            XCTAssertEqual(document?["schema"] as? String, "vmf-deploy/bench")
            let attachment = XCTAttachment(data: Data(json.utf8), uniformTypeIdentifier: "public.json")
            attachment.name = "bench-\(engine.name).json"
            attachment.lifetime = .keepAlways
            add(attachment)
            if let folder = ProcessInfo.processInfo.environment["VMF_BENCH_OUT"] {
                try json.write(to: URL(fileURLWithPath: folder).appendingPathComponent("bench-\(engine.name).json"),
                               atomically: true, encoding: .utf8)
            }
        }
    }

    func testManifestPreprocessingFeedsBothEngines() throws {
        for engine in try BundledModels.engines() {
            let logits = try engine.logits(for: engine.preprocessor.benchmarkInput())
            XCTAssertEqual(logits.count / MemoryLayout<Float>.size, 400, engine.name)
            XCTAssertEqual(try engine.preprocessor.topK(5, logits: logits).count, 5)
        }
    }

    private func report(for engine: ClassifierEngine) throws -> String {
        if let executorch = engine as? ExecuTorchEngine {
            return try executorch.model.benchmark(withWarmup: warmup, runs: runs)
        }
        // Core ML: timed here, reported by the same C++ as every other backend.
        let baseline = VMFClipPreprocessor.currentRssBytes()
        let input = engine.preprocessor.benchmarkInput()
        for _ in 0..<warmup { _ = try engine.logits(for: input) }
        var samples: [NSNumber] = []
        for _ in 0..<runs {
            let start = DispatchTime.now()
            _ = try engine.logits(for: input)
            samples.append(NSNumber(value: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6))
        }
        let path = engine.preprocessor.artifactPath
        let size = (try? FileManager.default.allocatedSizeOfDirectory(atPath: path)) ?? 0
        return try engine.preprocessor.benchReport(forBackend: engine.name, samplesMs: samples, loadMs: engine.loadMs,
                                                   artifactPath: path, artifactSizeBytes: size, warmup: warmup,
                                                   baselineRssBytes: baseline)
    }
}

private extension FileManager {
    /// Total bytes of the files under a directory (an .mlpackage) or of one file.
    func allocatedSizeOfDirectory(atPath path: String) throws -> Int64 {
        var isDirectory: ObjCBool = false
        guard fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
        if !isDirectory.boolValue { return (try attributesOfItem(atPath: path)[.size] as? Int64) ?? 0 }
        return try subpathsOfDirectory(atPath: path).reduce(Int64(0)) { total, sub in
            total + ((try attributesOfItem(atPath: (path as NSString).appendingPathComponent(sub))[.size] as? Int64) ?? 0)
        }
    }
}
