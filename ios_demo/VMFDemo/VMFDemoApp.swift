import Foundation
import SwiftUI

@main
struct VMFDemoApp: App {
    init() {
        // Launched with vmf_run's arguments (vmf-bench's ios backend: `devicectl device process launch
        // ... org.vmfdeploy.demo -- MODEL.pte --manifest ... --bench ...`): run them headless in the
        // Documents folder, exactly as vmf_run would, and exit with its code.
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, first.hasSuffix(".pte") || first == "--sha256" || first == "--version" {
            let documents = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
            exit(VMFCommandLine.run(withArguments: arguments, inDirectory: documents.path))
        }
    }

    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
