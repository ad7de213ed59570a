import AVFoundation
import CoreImage
import CoreVideo

/// Decodes only the frames the manifest's sampling picks from a video file into 32BGRA pixel
/// buffers and hands them to the preprocessor one at a time.
enum VideoFrames {
    static func classify(url: URL, engine: ClassifierEngine) async throws -> Classification {
        let asset = AVURLAsset(url: url)
        guard let track = try await asset.loadTracks(withMediaType: .video).first else {
            throw NSError(domain: VMFErrorDomain, code: 4, userInfo: [NSLocalizedDescriptionKey: "\(url.lastPathComponent) has no video track"])
        }
        let (duration, fps) = try await track.load(.timeRange, .nominalFrameRate)
        let count = max(1, Int64((duration.duration.seconds * Double(fps)).rounded()))
        let generator = AVAssetImageGenerator(asset: asset)
        generator.appliesPreferredTrackTransform = true  // upright frames, as the model saw in training
        generator.requestedTimeToleranceBefore = .zero
        generator.requestedTimeToleranceAfter = .zero

        let pre = engine.preprocessor
        pre.beginClip()
        var decodeMs = 0.0
        for (slot, index) in pre.sampleIndices(forFrameCount: count).enumerated() {
            let start = DispatchTime.now()
            let time = CMTime(value: CMTimeValue(index.int64Value), timescale: CMTimeScale(max(fps, 1)))
            let image = try await generator.image(at: CMTimeAdd(duration.start, time)).image
            let buffer = try bgraBuffer(from: image)
            decodeMs += Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            try pre.setFrame(buffer, atSlot: slot)
        }
        return try engine.classifyCurrentClip(decodeMs: decodeMs)
    }

    /// A 32BGRA pixel buffer holding `image`.
    static func bgraBuffer(from image: CGImage) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attrs = [kCVPixelBufferCGImageCompatibilityKey: true, kCVPixelBufferCGBitmapContextCompatibilityKey: true] as CFDictionary
        guard CVPixelBufferCreate(nil, image.width, image.height, kCVPixelFormatType_32BGRA, attrs, &buffer) == kCVReturnSuccess,
              let buffer else {
            throw NSError(domain: VMFErrorDomain, code: 5, userInfo: [NSLocalizedDescriptionKey: "cannot allocate a frame buffer"])
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        let context = CGContext(data: CVPixelBufferGetBaseAddress(buffer), width: image.width, height: image.height,
                                bitsPerComponent: 8, bytesPerRow: CVPixelBufferGetBytesPerRow(buffer),
                                space: CGColorSpaceCreateDeviceRGB(),
                                bitmapInfo: CGImageAlphaInfo.premultipliedFirst.rawValue | CGBitmapInfo.byteOrder32Little.rawValue)
        context?.draw(image, in: CGRect(x: 0, y: 0, width: image.width, height: image.height))
        return buffer
    }
}
