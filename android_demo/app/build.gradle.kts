plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

// The ExecuTorch C++ install (headers + static libs, arm64-v8a) and the exported model folder:
// gradle.properties sets both; docs/android.md says how to produce them.
val executorchPrefix: String = rootProject.file(providers.gradleProperty("executorchPrefix").get()).absolutePath
val vmfModelDir: String = rootProject.file(providers.gradleProperty("vmfModelDir").get()).absolutePath

android {
    namespace = "org.vmfdeploy.demo"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        applicationId = "org.vmfdeploy.demo"
        minSdk = 28  // MediaMetadataRetriever.getFrameAtIndex
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += "arm64-v8a" }
        externalNativeBuild {
            cmake {
                arguments += listOf("-DEXECUTORCH_ANDROID_PREFIX=$executorchPrefix", "-DANDROID_STL=c++_shared")
                cppFlags += "-std=c++17"
            }
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug")  // a demo: sign release with the debug key
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }

    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = "3.22.1"
        }
    }
    sourceSets["main"].assets.srcDirs("src/main/assets", vmfModelDir)
    androidResources { noCompress += listOf("pte", "json", "txt") }
}

dependencies {
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.camerax.core)
    implementation(libs.camerax.camera2)
    implementation(libs.camerax.lifecycle)
    implementation(libs.camerax.view)
    implementation(libs.kotlinx.coroutines.android)
}
