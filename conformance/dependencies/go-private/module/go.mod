module example.com/private

go 1.22
