import SwiftUI

@main
struct VMFDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
