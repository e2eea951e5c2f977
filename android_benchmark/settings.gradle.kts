// The on-device benchmark harness of netadapt_tf (docs/on_device.md). Needs the Android SDK,
// JDK 17 and Gradle 8.13 (run `gradle wrapper --gradle-version 8.13` here once for ./gradlew).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "netadapt-android-benchmark"
include(":app")
