module informant.dev/plugins/label-enforcer

go 1.24

require github.com/informant-dev/informant/guest-sdk/go v0.0.0

replace github.com/informant-dev/informant/guest-sdk/go => ../../../guest-sdk/go
