package org.vmfdeploy.demo

import android.content.Context
import org.json.JSONObject
import java.io.File

/** The model files on disk: the .pte, its manifest and the label file the manifest names. */
data class ModelFiles(val pte: File, val manifest: File)

/**
 * Copies the exported model out of the APK's assets into app storage (ExecuTorch maps the .pte
 * from a file path). The assets hold one `<artifact>.manifest.json`; its `artifact.file` and
 * `labels.file` name the other two files. Files are copied once per APK install.
 */
object ModelAssets {
    private const val SUFFIX = ".manifest.json"

    fun install(context: Context): ModelFiles {
        val manifests = context.assets.list("")!!.filter { it.endsWith(SUFFIX) }
        require(manifests.size == 1) {
            "the APK must hold exactly one *$SUFFIX in its assets (found ${manifests.size}): set vmfModelDir " +
                "in gradle.properties to the folder vmf-export wrote"
        }
        val manifestName = manifests.single()
        val manifest = JSONObject(context.assets.open(manifestName).bufferedReader().use { it.readText() })
        val names = listOf(
            manifestName,
            manifest.getJSONObject("artifact").getString("file"),
            manifest.getJSONObject("labels").getString("file"),
        )
        val dir = File(context.filesDir, "model").apply { mkdirs() }
        val stamp = File(dir, ".installed-${context.packageManager.getPackageInfo(context.packageName, 0).lastUpdateTime}")
        if (!stamp.exists()) {
            for (name in names) {
                val tmp = File(dir, "$name.tmp")
                context.assets.open(name).use { input -> tmp.outputStream().use { input.copyTo(it) } }
                check(tmp.renameTo(File(dir, name))) { "cannot install $name" }
            }
            stamp.createNewFile()
        }
        return ModelFiles(pte = File(dir, names[1]), manifest = File(dir, manifestName))
    }
}
