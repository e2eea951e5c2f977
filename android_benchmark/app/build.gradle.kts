// The harness app: LiteRT in an app process, driven by the instrumented test in
// src/androidTest (AndroidJUnitRunner) from netadapt_tf/latency/android_app.py. The host driver
// relies on the application id, the runner, the versionName (= ResultFormat.HARNESS_VERSION)
// and the ABIs below; tests/test_android_harness.py checks them.
plugins {
    alias(libs.plugins.android.application)
}

android {
    namespace = "org.netadapt.benchmark"
    compileSdk = 36

    defaultConfig {
        applicationId = "org.netadapt.benchmark"
        minSdk = 24
        targetSdk = 36
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        ndk {
            // Phones only: an x86 emulator would run the arm64 code under binary translation
            // (or not at all), and its latency says nothing about a phone.
            abiFilters += listOf("arm64-v8a", "armeabi-v7a")
        }
    }

    androidResources {
        // Models bundled as assets stay uncompressed, so LiteRT can memory-map them.
        noCompress += "tflite"
    }

    buildTypes {
        debug {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        // The harness sources are Java 8 (tests compile them with `javac --release 8`).
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
}

dependencies {
    implementation(libs.litert)
    implementation(libs.litert.gpu)
    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.androidx.test.ext.junit)
    testImplementation(libs.junit)
}
