package org.vmfdeploy.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import java.io.File

/**
 * Benchmark entry point for vmf-bench's android backend (docs/android.md):
 *
 *     adb shell am start -W -n org.vmfdeploy.demo/.BenchmarkActivity \
 *         --es model /data/local/tmp/vmf/560m-16f.pte --ei warmup 3 --ei runs 10 [--ei threads 4]
 *
 * Loads the .pte with its manifest (`--es manifest`, default `<model>.manifest.json`), times the
 * runs in runtimes/ and writes the vmf-deploy/bench v1 document to
 * /sdcard/Android/data/org.vmfdeploy.demo/files/bench.json (atomically), or the error to
 * bench_error.txt beside it, logs `VMF_BENCH_DONE <path>` / `VMF_BENCH_FAILED <message>`
 * under the tag `vmf-bench`, and finishes.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val extras = intent.extras ?: Bundle()
        val outDir = getExternalFilesDir(null) ?: filesDir
        val result = File(outDir, "bench.json")
        val failure = File(outDir, "bench_error.txt")
        result.delete()
        failure.delete()
        Thread {
            try {
                val model = extras.getString("model") ?: ModelAssets.install(this).pte.path
                val manifest = extras.getString("manifest") ?: "$model.manifest.json"
                val warmup = extras.getInt("warmup", 3)
                val runs = extras.getInt("runs", 10)
                val threads = extras.getInt("threads", 0)
                require(runs >= 1 && warmup >= 0) { "runs must be >= 1 and warmup >= 0 (got $runs, $warmup)" }
                val command = "am start -n $packageName/.BenchmarkActivity --es model $model --ei warmup $warmup " +
                    "--ei runs $runs" + if (threads > 0) " --ei threads $threads" else ""
                val baseline = VmfRuntime.currentRssBytes()
                val json = VmfRuntime(model, manifest, threads).use {
                    it.benchmark(model, warmup, runs, File(model).length(), baseline, command)
                }
                val tmp = File(outDir, "bench.json.tmp")
                tmp.writeText(json)
                check(tmp.renameTo(result)) { "cannot write $result" }
                Log.i(TAG, "VMF_BENCH_DONE $result")
            } catch (e: Exception) {
                failure.writeText("${e.message}\n")
                Log.e(TAG, "VMF_BENCH_FAILED ${e.message}")
            }
            runOnUiThread { finish() }
        }.start()
    }

    private companion object {
        const val TAG = "vmf-bench"
    }
}
