package org.vmfdeploy.demo

import android.content.Context
import android.graphics.Bitmap
import android.media.MediaMetadataRetriever
import android.net.Uri
import android.os.SystemClock

/**
 * Decodes exactly the frames the manifest's sampling asks for (MediaMetadataRetriever, which runs
 * the platform MediaCodec decoder) and feeds them to the runtime one at a time, so at most one
 * decoded frame is held in memory.
 */
object VideoDecoder {
    fun classify(context: Context, uri: Uri, runtime: VmfRuntime): Classification {
        val retriever = MediaMetadataRetriever()
        try {
            retriever.setDataSource(context, uri)
            val count = retriever.extractMetadata(MediaMetadataRetriever.METADATA_KEY_VIDEO_FRAME_COUNT)?.toLongOrNull()
                ?: error("$uri has no video frame count: is it a video?")
            val indices = runtime.sampleIndices(count)
            runtime.beginClip()
            var decodeMs = 0.0
            var cached: Pair<Long, Bitmap>? = null  // short videos repeat a frame in consecutive slots
            for ((t, index) in indices.withIndex()) {
                val frame = if (cached?.first == index) cached.second else {
                    val start = SystemClock.elapsedRealtimeNanos()
                    val params = MediaMetadataRetriever.BitmapParams().apply { preferredConfig = Bitmap.Config.ARGB_8888 }
                    val bitmap = retriever.getFrameAtIndex(index.toInt(), params)
                        ?: error("cannot decode frame $index of $uri")
                    decodeMs += (SystemClock.elapsedRealtimeNanos() - start) / 1e6
                    cached?.second?.recycle()
                    cached = index to bitmap
                    bitmap
                }
                runtime.setFrame(t, frame)
            }
            cached?.second?.recycle()
            return runtime.classify(k = 5, decodeMs = decodeMs)
        } finally {
            retriever.release()
        }
    }
}
