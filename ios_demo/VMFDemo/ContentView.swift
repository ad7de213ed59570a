import PhotosUI
import SwiftUI

/// A picked video, copied out of the photo library into a temp file.
struct PickedVideo: Transferable {
    let url: URL
    static var transferRepresentation: some TransferRepresentation {
        FileRepresentation(contentType: .movie) { SentTransferredFile($0.url) } importing: { received in
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent(received.file.lastPathComponent)
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.copyItem(at: received.file, to: copy)
            return PickedVideo(url: copy)
        }
    }
}

struct ContentView: View {
    @StateObject private var camera = LiveCamera()
    @State private var engines: [ClassifierEngine] = []
    @State private var selected = 0
    @State private var pick: PhotosPickerItem?
    @State private var message = "Loading models…"
    @State private var cameraOn = false

    var body: some View {
        VStack(spacing: 12) {
            CameraPreview(session: camera.session)
                .frame(maxHeight: .infinity)
                .background(Color.black)
            if !engines.isEmpty {
                Picker("Engine", selection: $selected) {
                    ForEach(engines.indices, id: \.self) { Text(engines[$0].name).tag($0) }
                }
                .pickerStyle(.segmented)
            }
            HStack {
                Button(cameraOn ? "Stop camera" : "Camera") { toggleCamera() }
                Spacer()
                PhotosPicker("Pick video", selection: $pick, matching: .videos)
            }
            .disabled(engines.isEmpty)
            Text(cameraOn ? camera.result : message)
                .font(.system(.footnote, design: .monospaced))
                .frame(maxWidth: .infinity, alignment: .leading)
        }
        .padding()
        .task { load() }
        .onChange(of: pick) { _, item in if let item { Task { await classify(item) } } }
    }

    private func load() {
        do {
            engines = try BundledModels.engines()
            message = engines.isEmpty ? "No model in the app bundle: see docs/ios.md" :
                "ready: " + engines.map { "\($0.name) (load \(Int($0.loadMs)) ms)" }.joined(separator: ", ")
        } catch {
            message = "cannot load the models: \(error.localizedDescription)"
        }
    }

    private func toggleCamera() {
        cameraOn.toggle()
        if cameraOn { camera.start(engine: engines[selected]) } else { camera.stop() }
    }

    private func classify(_ item: PhotosPickerItem) async {
        if cameraOn { toggleCamera() }
        message = "decoding…"
        do {
            guard let video = try await item.loadTransferable(type: PickedVideo.self) else { return }
            let engine = engines[selected]
            message = "\(engine.name)\n" + format(try await VideoFrames.classify(url: video.url, engine: engine))
        } catch {
            message = "cannot classify the video: \(error.localizedDescription)"
        }
    }
}
