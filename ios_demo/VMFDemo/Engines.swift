import CoreML
import Foundation

/// Top-k classes and the time spent in each stage, in milliseconds.
struct Classification {
    let top: [VMFPrediction]
    let decodeMs: Double
    let preprocessMs: Double
    let modelMs: Double
}

/// One way to run the exported model. Both engines share the manifest-driven preprocessing of
/// runtimes/ (VMFClipPreprocessor); they differ only in what turns the clip tensor into logits.
protocol ClassifierEngine: AnyObject {
    /// The vmf-bench backend name of this engine.
    var name: String { get }
    var preprocessor: VMFClipPreprocessor { get }
    var loadMs: Double { get }
    /// float32 NCTHW clip (the manifest's input shape) -> float32 logits.
    func logits(for clip: Data) throws -> Data
}

extension ClassifierEngine {
    /// Runs the model on the clip the preprocessor holds and ranks the classes.
    func classifyCurrentClip(k: Int = 5, decodeMs: Double = 0) throws -> Classification {
        let clip = try preprocessor.clipTensor()
        let start = DispatchTime.now()
        let scores = try logits(for: clip)
        let modelMs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        return Classification(top: try preprocessor.topK(k, logits: scores), decodeMs: decodeMs,
                              preprocessMs: preprocessor.preprocessMs, modelMs: modelMs)
    }
}

/// ExecuTorch with the XNNPACK delegate, through runtimes/ (the same C++ as vmf_run).
final class ExecuTorchEngine: ClassifierEngine {
    let name = "executorch-native"
    let preprocessor: VMFClipPreprocessor
    let model: VMFExecuTorchModel
    var loadMs: Double { model.loadMs }

    init(pte: URL, manifest: URL) throws {
        preprocessor = try VMFClipPreprocessor(manifestPath: manifest.path)
        model = try VMFExecuTorchModel(ptePath: pte.path, manifestPath: manifest.path)
    }

    func logits(for clip: Data) throws -> Data { try model.runInput(clip) }
}

/// Core ML: the .mlpackage from `vmf-export --target coreml`, hash-checked, compiled on device.
final class CoreMLEngine: ClassifierEngine {
    let name = "coreml"
    let preprocessor: VMFClipPreprocessor
    let model: MLModel
    let loadMs: Double
    private let outputName: String

    init(package: URL, manifest: URL, computeUnits: MLComputeUnits = .all) throws {
        preprocessor = try VMFClipPreprocessor(manifestPath: manifest.path)
        try preprocessor.verifyArtifact(atPath: package.path)
        let start = DispatchTime.now()
        let compiled = try MLModel.compileModel(at: package)
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        model = try MLModel(contentsOf: compiled, configuration: configuration)
        loadMs = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
        guard let output = model.modelDescription.outputDescriptionsByName.keys.first else {
            throw NSError(domain: VMFErrorDomain, code: 2,
                          userInfo: [NSLocalizedDescriptionKey: "\(package.lastPathComponent) has no output"])
        }
        outputName = output
    }

    func logits(for clip: Data) throws -> Data {
        let input = try MLMultiArray(shape: preprocessor.inputShape, dataType: .float32)
        clip.withUnsafeBytes { raw in
            input.withUnsafeMutableBytes { dst, _ in dst.copyMemory(from: raw) }
        }
        let features = try MLDictionaryFeatureProvider(dictionary: [preprocessor.inputName: MLFeatureValue(multiArray: input)])
        guard let out = try model.prediction(from: features).featureValue(for: outputName)?.multiArrayValue else {
            throw NSError(domain: VMFErrorDomain, code: 3,
                          userInfo: [NSLocalizedDescriptionKey: "the Core ML model returned no \(outputName) array"])
        }
        // fp16 packages return Float16 arrays: read element-wise into float32.
        var scores = [Float](repeating: 0, count: out.count)
        for i in 0..<out.count { scores[i] = out[i].floatValue }
        return scores.withUnsafeBufferPointer { Data(buffer: $0) }
    }
}

/// The exported artifacts copied into the app bundle's Models folder (docs/ios.md).
enum BundledModels {
    static var folder: URL? { Bundle.main.url(forResource: "Models", withExtension: nil) }

    /// (artifact, manifest) pairs found through their `*.manifest.json` files.
    static func artifacts(in folder: URL? = folder) -> [(artifact: URL, manifest: URL)] {
        guard let folder, let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { $0.hasSuffix(".manifest.json") }.sorted().map { name in
            let manifest = folder.appendingPathComponent(name)
            return (folder.appendingPathComponent(String(name.dropLast(".manifest.json".count))), manifest)
        }
    }

    /// Every engine whose artifact is bundled: .pte -> ExecuTorch, .mlpackage -> Core ML.
    static func engines() throws -> [ClassifierEngine] {
        try artifacts().map { pair in
            pair.artifact.pathExtension == "mlpackage"
                ? try CoreMLEngine(package: pair.artifact, manifest: pair.manifest)
                : try ExecuTorchEngine(pte: pair.artifact, manifest: pair.manifest)
        }
    }
}
