package org.vmfdeploy.demo;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The JNI surface of the app's VmfRuntime.kt, declared in Java for a host JVM, and a driver.
 *
 * <p>Usage: {@code java -cp CLASSES org.vmfdeploy.demo.VmfRuntime LIBRARY PTE MANIFEST FRAMES_DIR COUNT}.
 * FRAMES_DIR holds {@code frame-<i>.rgba} files (RGBA_8888 rows) and {@code size.txt} ("width height").
 * It samples COUNT frames as the app does, classifies the clip, and prints one JSON line per step:
 * {"sample": [...]}, the classify result, then {"error": ...} for a call made out of order.
 */
public final class VmfRuntime {
    private static native long nativeOpen(String pte, String manifest, int threads);
    private static native void nativeClose(long handle);
    private static native int nativeClipFrames(long handle);
    private static native long[] nativeSampleIndices(long handle, long numFrames);
    private static native void nativeBeginClip(long handle);
    private static native void nativeSetFrame(long handle, int t, Object frame);
    private static native String nativeClassify(long handle, int k);
    private static native String nativeBenchmark(
            long handle, String pte, int warmup, int runs, long artifactSize, long baselineRss, String command);
    private static native long nativeCurrentRss();

    private VmfRuntime() {}

    public static void main(String[] args) throws Exception {
        System.load(Path.of(args[0]).toAbsolutePath().toString());
        Path frames = Path.of(args[3]);
        long count = Long.parseLong(args[4]);
        String[] size = Files.readString(frames.resolve("size.txt")).trim().split(" ");
        int width = Integer.parseInt(size[0]);
        int height = Integer.parseInt(size[1]);
        long handle = nativeOpen(args[1], args[2], 2);
        try {
            try {
                nativeSetFrame(handle, 0, new HostBitmap(width, height, new byte[width * height * 4]));
            } catch (IllegalStateException e) {
                System.out.println("{\"error\": \"" + e.getMessage() + "\"}");
            }
            long[] sample = nativeSampleIndices(handle, count);
            System.out.println("{\"clip_frames\": " + nativeClipFrames(handle) + ", \"sample\": "
                    + Arrays.toString(sample) + "}");
            nativeBeginClip(handle);
            for (int t = 0; t < sample.length; t++) {
                byte[] rgba = Files.readAllBytes(frames.resolve("frame-" + sample[t] + ".rgba"));
                nativeSetFrame(handle, t, new HostBitmap(width, height, rgba));
            }
            System.out.println(nativeClassify(handle, 5));
            try {
                nativeSetFrame(handle, 0, new HostBitmap(width, height, new byte[3]));
            } catch (IllegalStateException e) {
                System.out.println("{\"error\": \"" + e.getMessage() + "\"}");
            }
            System.out.println("{\"rss_bytes\": " + nativeCurrentRss() + "}");
        } finally {
            nativeClose(handle);
        }
    }
}
