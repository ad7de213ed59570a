package org.vmfdeploy.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.net.Uri
import android.os.Bundle
import android.widget.Button
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live camera and gallery-video classification with the exported model in the APK's assets.
 * All native calls run on [worker]; the UI shows the top-5 and the decode / preprocess / model times.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var previewView: PreviewView
    private lateinit var results: TextView
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var runtime: VmfRuntime? = null
    private var liveClip: LiveClip? = null
    private var cameraProvider: ProcessCameraProvider? = null

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else show("camera permission denied")
    }
    private val pickVideo = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        if (uri != null) classifyVideo(uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        previewView = findViewById(R.id.preview)
        results = findViewById(R.id.results)
        findViewById<Button>(R.id.camera_button).setOnClickListener {
            if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
                startCamera()
            } else {
                askCamera.launch(Manifest.permission.CAMERA)
            }
        }
        findViewById<Button>(R.id.pick_button).setOnClickListener { pickVideo.launch("video/*") }
        worker.execute {
            try {
                val files = ModelAssets.install(this)
                runtime = VmfRuntime(files.pte.path, files.manifest.path)
                show("ready: ${files.pte.name} (${runtime!!.clipFrames} frames per clip)")
            } catch (e: Exception) {
                show("cannot load the model: ${e.message}")
            }
        }
    }

    private fun classifyVideo(uri: Uri) {
        stopCamera()
        show("decoding…")
        worker.execute {
            val rt = runtime ?: return@execute show("the model is not loaded")
            try {
                show(format(VideoDecoder.classify(this, uri, rt)))
            } catch (e: Exception) {
                show("cannot classify the video: ${e.message}")
            }
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get().also { cameraProvider = it }
            val preview = Preview.Builder().build().also { it.surfaceProvider = previewView.surfaceProvider }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(worker) { image -> onCameraFrame(image) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun stopCamera() {
        cameraProvider?.unbindAll()
        liveClip = null
    }

    /** Runs on [worker]: feeds the frames the clip samples and classifies each completed clip. */
    private fun onCameraFrame(image: ImageProxy) {
        image.use {
            val rt = runtime ?: return
            val clip = liveClip ?: LiveClip(rt).also { liveClip = it }
            var frame: Bitmap? = null
            while (clip.wants()) {
                rt.setFrame(clip.slot(), frame ?: upright(image).also { frame = it })
                clip.take()
            }
            if (clip.advance()) {
                show("camera\n" + format(rt.classify(k = 5)))
                liveClip = null
            }
        }
    }

    private fun upright(image: ImageProxy): Bitmap {
        val bitmap = image.toBitmap()
        val degrees = image.imageInfo.rotationDegrees
        if (degrees == 0) return bitmap
        val rotated = Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height,
            Matrix().apply { postRotate(degrees.toFloat()) }, true)
        bitmap.recycle()
        return rotated
    }

    private fun format(c: Classification): String = buildString {
        c.top.forEachIndexed { i, p -> append("%d. %-32s %.3f\n".format(i + 1, p.label, p.score)) }
        append("decode %.1f ms · preprocess %.1f ms · model %.1f ms".format(c.decodeMs, c.preprocessMs, c.modelMs))
    }

    private fun show(text: String) = runOnUiThread { results.text = text }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { runtime?.close() }
        worker.shutdown()
    }

    /**
     * One live clip over a window of [WINDOW_PER_CLIP_FRAME] analysed camera frames per clip
     * frame; which frames enter the clip is the manifest's sampling rule (runtime.sampleIndices).
     */
    private class LiveClip(runtime: VmfRuntime) {
        private val window = runtime.clipFrames * WINDOW_PER_CLIP_FRAME
        private val picks = runtime.sampleIndices(window.toLong())
        private var position = 0L
        private var next = 0

        init {
            runtime.beginClip()
        }

        /** True while the current camera frame fills the next clip slot (a slot at a time). */
        fun wants(): Boolean = next < picks.size && picks[next] == position
        fun slot(): Int = next
        fun take() {
            next++
        }

        /** Moves to the next camera frame; true when the clip is complete. */
        fun advance(): Boolean {
            position++
            return position >= window
        }

        companion object {
            const val WINDOW_PER_CLIP_FRAME = 4
        }
    }
}
