module github.com/informant-dev/informant/guest-sdk/go

go 1.24
