package org.vmfdeploy.demo

import android.graphics.Bitmap
import org.json.JSONObject
import java.io.Closeable

/** One class of a prediction. */
data class Prediction(val index: Int, val label: String, val score: Float)

/** Top-k classes plus the time spent in each stage, in milliseconds. */
data class Classification(
    val top: List<Prediction>,
    val decodeMs: Double,
    val preprocessMs: Double,
    val modelMs: Double,
)

/**
 * Kotlin face of runtimes/ (through libvmf_jni.so): the manifest-driven preprocessing, the
 * ExecuTorch program, labels and top-k. Preprocessing constants are read from the manifest by the
 * native code; nothing here knows them. Not thread-safe: use one instance from one thread.
 */
class VmfRuntime(ptePath: String, manifestPath: String, threads: Int = 0) : Closeable {
    private var handle: Long = nativeOpen(ptePath, manifestPath, threads)

    /** Frames per clip (the manifest's preprocessing.frames). */
    val clipFrames: Int get() = nativeClipFrames(live())

    /** Which of [numFrames] decoded frames make the clip (uniform over the whole video). */
    fun sampleIndices(numFrames: Long): LongArray = nativeSampleIndices(live(), numFrames)

    /** Starts a new clip; then call [setFrame] for every time slot 0 until [clipFrames]. */
    fun beginClip() = nativeBeginClip(live())

    /** Resizes, crops and normalises an ARGB_8888 frame into time slot [t]. */
    fun setFrame(t: Int, frame: Bitmap) = nativeSetFrame(live(), t, frame)

    /** Runs the model on the completed clip. */
    fun classify(k: Int = 5, decodeMs: Double = 0.0): Classification {
        val json = JSONObject(nativeClassify(live(), k))
        val top = json.getJSONArray("top")
        return Classification(
            top = (0 until top.length()).map {
                val p = top.getJSONObject(it)
                Prediction(p.getInt("index"), p.getString("label"), p.getDouble("score").toFloat())
            },
            decodeMs = decodeMs,
            preprocessMs = json.getDouble("preprocess_ms"),
            modelMs = json.getDouble("model_ms"),
        )
    }

    /** Times [runs] forward passes after [warmup]; returns the vmf-bench results JSON document. */
    fun benchmark(ptePath: String, warmup: Int, runs: Int, artifactSize: Long, baselineRss: Long, command: String): String =
        nativeBenchmark(live(), ptePath, warmup, runs, artifactSize, baselineRss, command)

    override fun close() {
        if (handle != 0L) nativeClose(handle)
        handle = 0L
    }

    private fun live(): Long {
        check(handle != 0L) { "VmfRuntime is closed" }
        return handle
    }

    companion object {
        init {
            System.loadLibrary("vmf_jni")
        }

        /** Resident memory of this process now, in bytes (-1 if unknown). */
        fun currentRssBytes(): Long = nativeCurrentRss()

        @JvmStatic private external fun nativeOpen(pte: String, manifest: String, threads: Int): Long
        @JvmStatic private external fun nativeClose(handle: Long)
        @JvmStatic private external fun nativeClipFrames(handle: Long): Int
        @JvmStatic private external fun nativeSampleIndices(handle: Long, numFrames: Long): LongArray
        @JvmStatic private external fun nativeBeginClip(handle: Long)
        @JvmStatic private external fun nativeSetFrame(handle: Long, t: Int, frame: Bitmap)
        @JvmStatic private external fun nativeClassify(handle: Long, k: Int): String
        @JvmStatic private external fun nativeBenchmark(
            handle: Long, pte: String, warmup: Int, runs: Int, artifactSize: Long, baselineRss: Long, command: String,
        ): String
        @JvmStatic private external fun nativeCurrentRss(): Long
    }
}
