import AVFoundation
import SwiftUI

/// Back-camera frames (32BGRA) classified clip after clip. A clip spans `windowPerClipFrame`
/// analysed frames per clip frame; which frames enter it is the manifest's sampling rule.
final class LiveCamera: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    static let windowPerClipFrame = 4

    let session = AVCaptureSession()
    @Published var result: String = ""
    private let queue = DispatchQueue(label: "org.vmfdeploy.camera")
    private var engine: ClassifierEngine?
    private var picks: [Int64] = []
    private var position: Int64 = 0
    private var next = 0

    func start(engine: ClassifierEngine) {
        queue.async { [self] in
            self.engine = engine
            resetClip()
            guard session.inputs.isEmpty else { session.startRunning(); return }
            guard let camera = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
                  let input = try? AVCaptureDeviceInput(device: camera) else {
                publish("no camera available")
                return
            }
            let output = AVCaptureVideoDataOutput()
            output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
            output.alwaysDiscardsLateVideoFrames = true
            output.setSampleBufferDelegate(self, queue: queue)
            session.beginConfiguration()
            session.sessionPreset = .hd1280x720
            session.addInput(input)
            session.addOutput(output)
            output.connection(with: .video)?.videoRotationAngle = 90  // portrait: upright frames
            session.commitConfiguration()
            session.startRunning()
        }
    }

    func stop() { queue.async { self.session.stopRunning() } }

    private func resetClip() {
        guard let engine else { return }
        let window = Int64(engine.preprocessor.clipFrames * Self.windowPerClipFrame)
        picks = engine.preprocessor.sampleIndices(forFrameCount: window).map(\.int64Value)
        position = 0
        next = 0
        engine.preprocessor.beginClip()
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let engine, let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        do {
            while next < picks.count && picks[next] == position {
                try engine.preprocessor.setFrame(pixels, atSlot: next)
                next += 1
            }
            position += 1
            if position >= Int64(picks.count * Self.windowPerClipFrame) {
                publish("camera · \(engine.name)\n" + format(try engine.classifyCurrentClip()))
                resetClip()
            }
        } catch {
            publish(error.localizedDescription)
            resetClip()
        }
    }

    private func publish(_ text: String) { DispatchQueue.main.async { self.result = text } }
}

/// The camera preview layer in SwiftUI.
struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspectFill
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }
}

/// Top-5 and stage timings as text.
func format(_ c: Classification) -> String {
    var lines = c.top.enumerated().map { i, p in String(format: "%d. %@  %.3f", i + 1, p.label, p.score) }
    lines.append(String(format: "decode %.1f ms · preprocess %.1f ms · model %.1f ms", c.decodeMs, c.preprocessMs, c.modelMs))
    return lines.joined(separator: "\n")
}
