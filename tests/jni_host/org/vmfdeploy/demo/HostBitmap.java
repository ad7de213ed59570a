package org.vmfdeploy.demo;

/** An RGBA_8888 frame for the host-side JNI test: what android.graphics.Bitmap is to the bridge on a phone. */
final class HostBitmap {
    final int width;
    final int height;
    final byte[] pixels;

    HostBitmap(int width, int height, byte[] pixels) {
        this.width = width;
        this.height = height;
        this.pixels = pixels;
    }
}
